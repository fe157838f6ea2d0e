import { KrgoError } from '../errors.js';

/** The parts of an image config file (image-spec config.md) a runtime configuration is made from. */
export interface ImageConfigFile {
  architecture?: string;
  os?: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  author?: string;
  created?: string;
  config?: {
    User?: string;
    Env?: string[] | null;
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    StopSignal?: string;
    ExposedPorts?: Record<string, unknown> | null;
    Volumes?: Record<string, unknown> | null;
  };
}

/** The image's own /etc/passwd and /etc/group (text), for names in Config.User. */
export interface ImageUsers {
  passwd?: string;
  group?: string;
}

/** The environment every process starts from (runtime-tools' defaults); the image's Env goes over it. */
const DEFAULT_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'];
/** Docker's default capabilities: what images expect to run with. */
const CAPABILITIES = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE'];

/**
 * An OCI runtime configuration (runtime-spec config.md, 1.0.2) for the image, after image-spec's
 * conversion.md: WorkingDir, Env, Entrypoint + Cmd verbatim; User parsed (names through the
 * image's own passwd and group files, an unknown one is an error); os, architecture, variant,
 * os.version, os.features, author, created, StopSignal and ExposedPorts as annotations, Labels
 * over them. The rest is krgo's default, as `runc spec` writes it, with docker's capabilities.
 */
export function runtimeSpec(image: ImageConfigFile, options: { rootPath: string; readonly: boolean; users: ImageUsers; hostname?: string }): Record<string, unknown> {
  const config = image.config ?? {};
  const { user, home } = resolveUser(config.User ?? '', options.users);
  const env = [...DEFAULT_ENV];
  const set = (pair: string) => {
    const name = pair.slice(0, pair.indexOf('=') + 1);
    const at = env.findIndex((e) => e.startsWith(name));
    if (at >= 0) env[at] = pair;
    else env.push(pair);
  };
  for (const pair of config.Env ?? []) if (pair.indexOf('=') > 0) set(pair);
  // HOME as a login would set it, unless the image sets it (docker and umoci do the same).
  if (home !== undefined && !env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${home}`);
  const args = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user,
      args,
      env,
      cwd: config.WorkingDir || '/',
      capabilities: { bounding: CAPABILITIES, effective: CAPABILITIES, permitted: CAPABILITIES },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: options.rootPath, readonly: options.readonly },
    hostname: options.hostname ?? 'krgo',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    annotations: annotationsOf(image),
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: ['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup'].map((type) => ({ type })),
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

function annotationsOf(image: ImageConfigFile): Record<string, string> {
  const config = image.config ?? {};
  const implicit: Record<string, string | undefined> = {
    'org.opencontainers.image.os': image.os,
    'org.opencontainers.image.architecture': image.architecture,
    'org.opencontainers.image.variant': image.variant,
    'org.opencontainers.image.os.version': image['os.version'],
    'org.opencontainers.image.os.features': image['os.features']?.join(','),
    'org.opencontainers.image.author': image.author,
    'org.opencontainers.image.created': image.created,
    'org.opencontainers.image.stopSignal': config.StopSignal,
    'org.opencontainers.image.exposedPorts': config.ExposedPorts ? Object.keys(config.ExposedPorts).sort().join(',') : undefined,
  };
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(implicit)) if (value) out[key] = value;
  // Labels take precedence over the implicit annotations (conversion.md, Annotations).
  return { ...out, ...(config.Labels ?? {}) };
}

interface PasswdLine {
  name: string;
  uid: number;
  gid: number;
  home?: string;
}

function passwdLines(text: string | undefined): PasswdLine[] {
  return (text ?? '').split('\n').flatMap((line) => {
    const f = line.split(':');
    return f.length >= 4 && f[0] ? [{ name: f[0], uid: Number(f[2]), gid: Number(f[3]), ...(f[5] ? { home: f[5] } : {}) }] : [];
  });
}

function groupLines(text: string | undefined): { name: string; gid: number; members: string[] }[] {
  return (text ?? '').split('\n').flatMap((line) => {
    const f = line.split(':');
    return f.length >= 3 && f[0] ? [{ name: f[0], gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }] : [];
  });
}

const numeric = (s: string) => /^\d+$/.test(s);

type ProcessUser = { uid: number; gid: number; additionalGids?: number[] };

/**
 * Config.User ("user", "uid", "user:group", "uid:gid", …) as runtime-spec's process.user, and
 * the user's home directory when the image's passwd file names one.
 */
export function resolveUser(spec: string, users: ImageUsers): { user: ProcessUser; home?: string } {
  const [userPart, groupPart] = (spec === '' ? '0' : spec).split(':', 2) as [string, string | undefined];
  const passwd = passwdLines(users.passwd);
  const groups = groupLines(users.group);
  const entry = numeric(userPart) ? passwd.find((p) => p.uid === Number(userPart)) : passwd.find((p) => p.name === userPart);
  if (!numeric(userPart) && !entry) throw new KrgoError('BAD_CONFIG', `the image runs as user ${JSON.stringify(userPart)}, which its /etc/passwd does not have`);
  const uid = numeric(userPart) ? Number(userPart) : entry!.uid;
  let gid = entry?.gid ?? 0;
  const home = entry?.home !== undefined ? { home: entry.home } : {};
  if (groupPart !== undefined) {
    if (numeric(groupPart)) gid = Number(groupPart);
    else {
      const group = groups.find((g) => g.name === groupPart);
      if (!group) throw new KrgoError('BAD_CONFIG', `the image runs as group ${JSON.stringify(groupPart)}, which its /etc/group does not have`);
      gid = group.gid;
    }
    return { user: { uid, gid }, ...home };
  }
  // A user named without a group gets its supplementary groups (conversion.md, Config.User).
  if (numeric(userPart) || !entry) return { user: { uid, gid }, ...home };
  const additional = groups.filter((g) => g.members.includes(entry.name)).map((g) => g.gid);
  return { user: additional.length ? { uid, gid, additionalGids: additional } : { uid, gid }, ...home };
}
