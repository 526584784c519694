// Workload fields a hostile renter might send, shared by the schema tests (what the API accepts)
// and the runner tests (what reaches `docker run`). Every image here must be refused.
import fc from 'fast-check';

const HEX64 = 'a'.repeat(32) + '0123456789abcdef'.repeat(2);

export const HOSTILE_IMAGES: readonly string[] = [
  // docker options, alone and in `=` forms
  '--privileged', '-v', '--volume=/:/host', '-v=/:/host', '--volume', '--network=host', '--pid=host',
  '--ipc=host', '--cap-add=ALL', '--security-opt=seccomp=unconfined', '--device=/dev/mem',
  '--mount=type=bind,source=/,target=/host', '--entrypoint=/bin/sh', '--env-file=/etc/shadow',
  '--userns=host', '--rm', '-it', '-', '--', '-alpine', '-privileged',
  // `=` and option-ish forms that do not start with a dash
  'alpine=latest', '=alpine', 'privileged=true', 'alpine --privileged',
  // whitespace and control characters
  '', ' ', ' alpine', 'alpine ', 'alp ine', 'alpine\n', '\talpine', 'alpine\r\n--privileged', 'alpine\u0000',
  'alpine\u00a0', '\u2003alpine', 'alpine\u200b', '\ufeffalpine',
  // unicode look-alikes: hyphens, minus signs, fullwidth letters, Cyrillic, fullwidth separators
  '\u2010\u2010privileged', '\u2011-privileged', '\u2212\u2212privileged', '\u2013privileged', '\u2014privileged',
  '\uff0d\uff0dprivileged', '\ufe63privileged', 'ａｌｐｉｎｅ', '\u0430lpine', 'alpine\uff1alatest',
  'ghcr.io\uff0facme\uff0ftrain', 'alpine\u2024latest', 'ghcr\u3002io/acme/x',
  // uppercase repository names
  'Alpine', 'UBUNTU', 'ghcr.io/Acme/train:1', 'library/Busybox',
  // empty segments and stray separators
  '/alpine', 'alpine/', 'ghcr.io//x', 'a/:tag', 'alpine:', 'alpine@', ':latest', '@sha256:' + HEX64,
  'alpine::1', 'alpine:1:2', 'a..b', 'a-', '_a', 'a_', 'a___b', '.', '..', '../etc/passwd', 'a/../../b',
  'localhost:/x', 'localhost:99999/x', 'localhost:0x50/x', 'registry.example.com:/x', '-registry.example.com/x',
  'registry-.example.com/x', 'registry..example.com/x', '[::1]:5000/x',
  // registries on the provider's own machine or network
  'localhost/model', 'localhost:5000/team/model', '127.0.0.1:5000/x', '10.0.0.7/x', '169.254.169.254/latest',
  'registry:5000/x', 'LOCALHOST/x',
  // overlong tags and names
  `alpine:${'a'.repeat(129)}`, `alpine:.${'a'.repeat(5)}`, `alpine:-tag`, `${'a'.repeat(256)}`,
  `${'a/'.repeat(127)}ab`,
  // bad digests
  'alpine@sha256:abc', `alpine@sha256:${'g'.repeat(64)}`, `alpine@sha256:${HEX64.toUpperCase()}`,
  `alpine@sha256:${HEX64}0`, `alpine@sha256:${HEX64.slice(1)}`, `alpine@md5:${HEX64.slice(0, 32)}`,
  `alpine@sha512:${HEX64}${HEX64}`, `alpine@${HEX64}`, `alpine@sha256:${HEX64}@sha256:${HEX64}`,
  `alpine@sha256:${HEX64}:tag`,
  // a bare 64-hex string names a local image by id, not a repository
  HEX64,
];

export const GOOD_IMAGES: readonly string[] = [
  'alpine', 'busybox', 'x', 'img', 'unused', 'local/process', 'ubuntu:22.04', 'docker.io/library/alpine',
  'ghcr.io/acme/train:1.2', 'nvcr.io/nvidia/pytorch:24.05-py3', 'registry.example.com:443/a/b/c:Tag_1',
  'my-org/my__image', 'team/a.b_c--d', `alpine@sha256:${HEX64}`,
  // Docker Hub images named localhost (tag 5000): no registry part, nothing pulled from the host
  'localhost', 'localhost:5000',
  `ghcr.io/acme/train:1.2@sha256:${HEX64}`, `alpine:${'a'.repeat(128)}`, 'gcr.io/x', 'my.registry.example:5000/x',
];

/** 1,000 random strings: printable ASCII, option-shaped and any Unicode, from a fixed seed. */
export const RANDOM_RUNS = { seed: 20_261_207, numRuns: 1_000 } as const;
export const randomImage = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({ unit: fc.constantFrom(...'abcXYZ019-_.:/@= \t\n\u2010\u2212\uff0d'.split('')), maxLength: 40 }),
  fc.string({ maxLength: 60 }).map((s) => `-${s}`),
  fc.string({ maxLength: 60 }).map((s) => `--${s}=/:/host`),
);

/** What any image the validator accepts looks like: lowercase name, never an option. */
export const SAFE_IMAGE_SHAPE = /^[a-z0-9][a-z0-9._\-/:]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

/** Env keys that would steer the GPU runtime on the host or overwrite the lease's own vars. */
export const RESERVED_ENV_KEYS: readonly string[] = [
  'NVIDIA_VISIBLE_DEVICES', 'NVIDIA_DRIVER_CAPABILITIES', 'NVIDIA_REQUIRE_CUDA', 'NVIDIA_MIG_CONFIG_DEVICES',
  'nvidia_visible_devices', 'CUDA_VISIBLE_DEVICES', 'GRIDLEASE_LEASE_ID', 'GRIDLEASE_LEASE_ENDS_AT', 'GRIDLEASE_NODE_TOKEN',
];
