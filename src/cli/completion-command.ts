import type { Command } from 'commander';
import { KrgoError } from '../errors.js';

/** Long and short options of a command, as the shell should offer them. */
function optionsOf(command: Command): string[] {
  return command.options.flatMap((o) => [o.long, o.short].filter((f): f is string => typeof f === 'string'));
}

/**
 * A bash completion script made from the program's own commands and options (so it never lags
 * behind them): command names first, then each command's options, files otherwise. zsh loads
 * the same through bashcompinit.
 */
function bashScript(program: Command): string {
  const commands = program.commands;
  const cases = commands
    .map((c) => {
      const subcommands = c.commands.map((s) => s.name());
      return `    ${c.name()}) words="${[...subcommands, ...optionsOf(c), '--help'].join(' ')}" ;;`;
    })
    .join('\n');
  return `# krgo completion for bash (and zsh through bashcompinit); made by \`krgo completion\`
_krgo() {
  local cur words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${commands.map((c) => c.name()).join(' ')} --help --version" -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases}
    *) words="" ;;
  esac
  if [[ "$cur" == -* || "$COMP_CWORD" -eq 2 && -n "$words" && "$words" != -* ]]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F _krgo krgo
`;
}

export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script: bash or zsh')
    .argument('<shell>', 'bash or zsh')
    .addHelpText('after', '\nExamples:\n  source <(krgo completion bash)                       # in ~/.bashrc\n  krgo completion zsh > "${fpath[1]}/_krgo"             # or: source <(krgo completion zsh) in ~/.zshrc')
    .action((shell: string) => {
      if (shell === 'bash') process.stdout.write(bashScript(program));
      else if (shell === 'zsh') process.stdout.write(`autoload -U +X bashcompinit && bashcompinit\n${bashScript(program)}`);
      else throw new KrgoError('USAGE', `no completion for ${JSON.stringify(shell)}: krgo completion bash, or krgo completion zsh`);
    });
}
