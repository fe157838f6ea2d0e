import type { Command } from 'commander';
import { parsePlatform } from '../image/platform.js';
import { parseUserPass } from '../registry/credentials.js';
import { defaultCacheDir } from '../util/paths.js';
import type { ImageSource } from '../registry/image-source.js';

export interface ImageFlags {
  user?: string;
  platform?: string;
  insecure?: boolean;
  cacheDir?: string;
}

/** The options every command that reads an image from a registry takes. */
export function withImageOptions(command: Command): Command {
  return command
    .option('-u, --user <user:password>', 'registry credentials (else ~/.docker/config.json, else anonymous)')
    .option('--platform <os/arch[/variant]>', "platform to choose from a multi-platform image (default: linux and this machine's architecture)")
    .option('--insecure', 'allow plain HTTP to registries that are not on loopback')
    .option('--cache-dir <dir>', 'downloads, layer indexes and mount status (default: $XDG_CACHE_HOME/krgo)');
}

export function imageSource(image: string, flags: ImageFlags): ImageSource {
  return {
    image,
    ...(flags.user ? { credentials: parseUserPass(flags.user) } : {}),
    ...(flags.platform ? { platform: parsePlatform(flags.platform) } : {}),
    ...(flags.insecure ? { insecure: true } : {}),
    cacheDir: flags.cacheDir ?? defaultCacheDir(),
  };
}
