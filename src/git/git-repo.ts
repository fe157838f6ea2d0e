import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { KrgoError } from '../errors.js';

/** Where krgo's own records live in the repository: one commit whose tree holds the image state. */
export const STATE_REF = 'refs/krgo/state';

/** Content changes git sees between a commit and the index. */
export interface NameStatus {
  status: 'A' | 'M' | 'D' | 'T';
  path: string;
}

/**
 * Settings that make git store exactly what is on disk, whatever files the image holds:
 * no line-ending or encoding conversion, no clean filters, symlinks as symlinks, the exec bit.
 * `info/attributes` outranks any `.gitattributes` the image carries.
 */
const REPO_CONFIG = `[core]
	autocrlf = false
	safecrlf = false
	filemode = true
	symlinks = true
	quotepath = false
	precomposeunicode = false
	# Loose objects stored, not deflated: \`git add\` of a rootfs is bound by zlib otherwise
	# (1.7x faster on a Debian rootfs, 2.3x the disk; \`git gc\` packs them).
	loosecompression = 0
[gc]
	auto = 0
`;
const NEUTRAL_ATTRIBUTES = '* -text -filter -ident -working-tree-encoding\n';

/**
 * A layer repository: git directory outside the rootfs (in `.ROOTFS.krgo/git`), the rootfs as
 * its work tree, so nothing of git's ever enters the image. The only importer of simple-git.
 * krgo runs git with no system or global configuration, so a user's settings cannot change
 * what is recorded.
 */
export class GitRepo {
  private readonly git: SimpleGit;

  constructor(
    readonly gitDir: string,
    readonly workTree: string,
    extraEnv: Record<string, string> = {},
  ) {
    // Only what git needs from the environment: an EDITOR, PAGER or GIT_* setting of the caller's
    // (npm sets EDITOR, for one) has no business in krgo's git calls, and simple-git refuses some.
    const inherited = Object.fromEntries(['PATH', 'HOME', 'TMPDIR'].flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])));
    this.git = simpleGit({ baseDir: workTree, maxConcurrentProcesses: 1, trimmed: false, unsafe: { allowUnsafeConfigPaths: true } }).env({
      ...inherited,
      LC_ALL: 'C',
      GIT_DIR: gitDir,
      GIT_WORK_TREE: workTree,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_AUTHOR_NAME: 'krgo',
      GIT_AUTHOR_EMAIL: 'krgo@localhost',
      GIT_COMMITTER_NAME: 'krgo',
      GIT_COMMITTER_EMAIL: 'krgo@localhost',
      GIT_TERMINAL_PROMPT: '0',
      ...extraEnv,
    });
  }

  /** A fresh repository whose configured work tree is `finalWorkTree` (where the rootfs will end up). */
  async init(finalWorkTree: string): Promise<void> {
    await mkdir(this.gitDir, { recursive: true });
    await this.run(['init', '-q']);
    // Written at once rather than by one `git config` process per key.
    await appendFile(join(this.gitDir, 'config'), REPO_CONFIG);
    await this.setWorkTree(finalWorkTree);
    await mkdir(join(this.gitDir, 'info'), { recursive: true });
    await writeFile(join(this.gitDir, 'info', 'attributes'), NEUTRAL_ATTRIBUTES);
    await writeFile(join(this.gitDir, 'info', 'exclude'), '');
  }

  async setWorkTree(path: string): Promise<void> {
    await this.run(['config', 'core.worktree', path]);
  }

  /** Stages the whole work tree, files a `.gitignore` of the image would hide included. */
  async stageAll(): Promise<void> {
    await this.run(['add', '--all', '--force']);
  }

  /** A new branch at HEAD (or the first branch of an empty repository), checked out; files untouched. */
  async startBranch(name: string): Promise<void> {
    await this.run(['checkout', '-q', '-b', name]);
  }

  /** Switches the work tree and HEAD to an existing branch. */
  async checkout(branch: string): Promise<void> {
    await this.run(['checkout', '-q', branch]);
  }

  /** No change git can see, untracked files included (ignore rules do not apply: nothing is ignored). */
  async isClean(): Promise<boolean> {
    return (await this.run(['status', '--porcelain', '--ignored', '--untracked-files=all'])).trim() === '';
  }

  /** Commits the index (an empty commit when only metadata changed); returns the commit id. */
  async commit(message: string): Promise<string> {
    await this.run(['commit', '-q', '--no-verify', '--allow-empty', '-m', message]);
    return this.revParse('HEAD');
  }

  async revParse(rev: string): Promise<string> {
    const id = (await this.run(['rev-parse', '--verify', '-q', `${rev}^{commit}`]).catch(() => '')).trim();
    if (!id) throw new KrgoError('GIT_STATE', `${rev} is not a commit in ${this.gitDir}`);
    return id;
  }

  /** Every branch and the commit it points at, in one call. */
  async branchCommits(): Promise<Map<string, string>> {
    const out = await this.run(['for-each-ref', '--format=%(refname:short)%00%(objectname)', 'refs/heads/']);
    return new Map(out.split('\n').filter(Boolean).map((line) => line.split('\0') as [string, string]));
  }

  async currentBranch(): Promise<string | undefined> {
    const out = await this.git.raw(['symbolic-ref', '-q', '--short', 'HEAD']).catch(() => '');
    return out.trim() || undefined;
  }

  /** Staged content changes against `commit`, renames split into a deletion and an addition. */
  async stagedChanges(commit: string): Promise<NameStatus[]> {
    const out = await this.run(['diff', '--cached', '--name-status', '--no-renames', '-z', commit]);
    const fields = out.split('\0');
    const changes: NameStatus[] = [];
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const status = fields[i]!.charAt(0) as NameStatus['status'];
      changes.push({ status, path: `/${fields[i + 1]!}` });
    }
    return changes;
  }

  /** The text of a file of the krgo state commit, or undefined when there is none. */
  async readState(file: string): Promise<string | undefined> {
    return this.git.raw(['cat-file', 'blob', `${STATE_REF}:${file}`]).catch(() => undefined);
  }

  /**
   * Records files (others keep their last content) as a new commit on the state ref: blobs hashed from a scratch directory and
   * a tree built in a scratch index, so neither the work tree nor the real index is touched.
   */
  async writeState(files: Record<string, string>, message: string): Promise<void> {
    const scratch = await mkdtemp(join(this.gitDir, 'krgo-state-'));
    try {
      const names = Object.keys(files).sort();
      await Promise.all(names.map(async (name, i) => writeFile(join(scratch, String(i)), files[name]!)));
      const hashes = (await this.run(['hash-object', '-w', '--no-filters', '--', ...names.map((_, i) => join(scratch, String(i)))])).trim().split('\n');
      const scratchIndex = new GitRepo(this.gitDir, this.workTree, { GIT_INDEX_FILE: join(scratch, 'index') });
      // Files not given keep their content from the previous state commit.
      const parent = await this.revParse(STATE_REF).catch(() => '');
      if (parent) await scratchIndex.run(['read-tree', parent]);
      await scratchIndex.run(['update-index', '--add', ...names.flatMap((name, i) => ['--cacheinfo', `100644,${hashes[i]},${name}`])]);
      const tree = (await scratchIndex.run(['write-tree'])).trim();
      const commit = (await this.run(['commit-tree', tree, ...(parent ? ['-p', parent] : []), '-m', message])).trim();
      await this.run(['update-ref', STATE_REF, commit]);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  private async run(args: string[]): Promise<string> {
    try {
      return await this.git.raw(args);
    } catch (err) {
      throw new KrgoError('GIT_FAILED', `git ${args[0]} failed in ${this.gitDir}: ${(err as Error).message.trim()}`, { cause: err });
    }
  }
}
