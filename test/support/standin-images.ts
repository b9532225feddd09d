// Local stand-ins for the two public base images the compose file names,
// built from what this machine can reach when Docker Hub cannot be: a root
// file system of this machine's own Debian 12 packages (dpkg -L), Node 24 from
// the npm `node` package (node_modules/.bin/node), npm from the npm registry,
// and the Consul the project installs (.tools/consul). `docker import` turns
// each into a one-layer image. An image of the same tag is reused.
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { findConsul } from '../../lab/consul-binary.ts';
import { run, type DockerEngine } from './docker-engine.ts';

export interface StandinImages {
  /** For the Dockerfile's NODE_IMAGE (public default node:24-bookworm-slim). */
  node: string;
  /** For the compose file's SEMPRE_CONSUL_IMAGE (public default hashicorp/consul). */
  consul: string;
  /** Seconds spent building them (0 when reused). */
  buildSeconds: number;
}

const NPM_MAJOR = '11';
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const DOCS = /^\/usr\/share\/(doc|man|info|lintian|locale)\//;

/** The files of installed Debian packages, copied into `root` with their modes and symlinks. */
async function copyDebianPackages(root: string, packages: readonly string[]): Promise<void> {
  // Debian 12 merges /bin, /lib, /lib64 and /sbin into /usr: keep those links.
  for (const top of ['bin', 'lib', 'lib64', 'sbin']) {
    if (!lstatSync(`/${top}`).isSymbolicLink()) continue;
    mkdirSync(join(root, 'usr', top), { recursive: true });
    symlinkSync(readlinkSync(`/${top}`), join(root, top));
  }
  const listed = (await run('dpkg', ['-L', ...packages])).split('\n').filter((p) => p.startsWith('/') && !DOCS.test(p));
  for (const path of listed) {
    const stat = lstatSync(path, { throwIfNoEntry: false });
    const target = join(root, path);
    if (!stat || existsSync(target)) continue;
    if (stat.isDirectory()) mkdirSync(target, { recursive: true, mode: 0o755 });
    else if (stat.isSymbolicLink()) {
      mkdirSync(dirname(target), { recursive: true });
      symlinkSync(readlinkSync(path), target);
    } else if (stat.isFile()) {
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(path, target);
      chmodSync(target, stat.mode & 0o7777);
    }
  }
}

/**
 * /etc/passwd and friends with root and the `node` user (uid 1000) the official
 * image has, /tmp, and this machine's CA bundle: npm inside the build then
 * trusts what this machine trusts (a TLS-inspecting egress proxy, say).
 */
function writeBaseFiles(root: string): void {
  mkdirSync(join(root, 'etc/ssl/certs'), { recursive: true });
  if (existsSync(CA_BUNDLE)) copyFileSync(CA_BUNDLE, join(root, CA_BUNDLE));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n');
  for (const dir of ['root', 'home/node', 'tmp']) mkdirSync(join(root, dir), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
}

async function imageExists(engine: DockerEngine, tag: string): Promise<boolean> {
  return engine.docker(['image', 'inspect', tag]).then(() => true, () => false);
}

/** Imports `root` as a one-layer image; removes older tags of the same repository. */
async function importRoot(engine: DockerEngine, root: string, tag: string, changes: readonly string[]): Promise<void> {
  const tarball = `${root}.tar`;
  await run('tar', ['-C', root, '-cf', tarball, '.']);
  await engine.docker(['import', ...changes.flatMap((c) => ['--change', c]), tarball, tag]);
  const repository = tag.split(':')[0]!;
  const older = (await engine.docker(['image', 'ls', repository, '--format', '{{.Repository}}:{{.Tag}}'])).split('\n').filter((t) => t && t !== tag);
  if (older.length > 0) await engine.docker(['image', 'rm', ...older]);
}

async function buildNode(engine: DockerEngine, work: string, tag: string): Promise<void> {
  const root = join(work, 'node');
  await copyDebianPackages(root, ['libc6', 'libstdc++6', 'libgcc-s1', 'dash', 'coreutils', 'libacl1', 'libattr1', 'libgmp10', 'libselinux1', 'libpcre2-8-0']);
  writeBaseFiles(root);
  mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
  const node = join(root, 'usr/local/bin/node');
  copyFileSync(realpathSync(process.execPath), node);
  chmodSync(node, 0o755);
  // npm as the official image has it: the registry's own tarball under /usr/local/lib/node_modules.
  await run('npm', ['pack', `npm@${NPM_MAJOR}`, '--pack-destination', work, '--silent']);
  const packed = readdirSync(work).find((f) => /^npm-\d.*\.tgz$/.test(f));
  if (!packed) throw new Error(`npm pack npm@${NPM_MAJOR} left no tarball in ${work}`);
  const modules = join(root, 'usr/local/lib/node_modules');
  mkdirSync(modules, { recursive: true });
  await run('tar', ['-xzf', join(work, packed), '-C', modules]);
  renameSync(join(modules, 'package'), join(modules, 'npm'));
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm'));
  symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(root, 'usr/local/bin/npx'));
  await importRoot(engine, root, tag, ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `ENV NODE_EXTRA_CA_CERTS=${CA_BUNDLE}`, 'CMD ["node"]']);
}

async function buildConsul(engine: DockerEngine, work: string, tag: string): Promise<void> {
  const root = join(work, 'consul');
  await copyDebianPackages(root, ['libc6']);
  writeBaseFiles(root);
  mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
  copyFileSync(findConsul(), join(root, 'usr/local/bin/consul'));
  chmodSync(join(root, 'usr/local/bin/consul'), 0o755);
  // The official image runs `consul agent -dev -client 0.0.0.0` by default, through its entrypoint script.
  await importRoot(engine, root, tag, ['ENV PATH=/usr/local/bin:/usr/bin:/bin', 'ENTRYPOINT ["consul"]', 'CMD ["agent", "-dev", "-client", "0.0.0.0"]']);
}

export async function standinImages(engine: DockerEngine, versions: { consul: string }): Promise<StandinImages> {
  const node = `sempre-standin/node:${process.version.slice(1)}`;
  const consul = `sempre-standin/consul:${versions.consul}`;
  const started = performance.now();
  const work = mkdtempSync(join(tmpdir(), 'sempre-standin-'));
  let built = false;
  try {
    if (!(await imageExists(engine, node))) {
      await buildNode(engine, work, node);
      built = true;
    }
    if (!(await imageExists(engine, consul))) {
      await buildConsul(engine, work, consul);
      built = true;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return { node, consul, buildSeconds: built ? (performance.now() - started) / 1000 : 0 };
}
