// Container image references, checked strictly before one reaches `docker run` on a provider's
// machine. The grammar is the OCI distribution one (github.com/distribution/reference), narrowed:
//   [domain[:port]/]path-component[/path-component…][:tag][@sha256:<64 hex>]
// ASCII only, lowercase except in the tag, never starting with `-`; a bare 64-hex string (a local
// image id) is refused, and so is a registry that could only be on the provider's own machine or
// network (localhost, an IP address, a name without a dot): the provider's docker would pull from
// it. Pure: the runner bundles it.

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-z0-9]|[a-z0-9][a-z0-9-]{0,61}[a-z0-9])$/;
const PORT = /^[0-9]{1,5}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const IMAGE_ID = /^[a-f0-9]{64}$/;
const MAX_NAME = 255;
export const MAX_IMAGE_REFERENCE = 256;

export const IMAGE_REFERENCE_RULE =
  'must be an image reference, [registry[:port]/]name[:tag][@sha256:<64 hex>], with a lowercase name and a public registry';

function isDomain(part: string): boolean {
  const colon = part.indexOf(':');
  const host = colon < 0 ? part : part.slice(0, colon);
  if (colon >= 0) {
    const port = part.slice(colon + 1);
    if (!PORT.test(port) || Number(port) < 1 || Number(port) > 65_535) return false;
  }
  const labels = host.split('.');
  if (labels.length < 2 || labels.every((c) => /^[0-9]+$/.test(c))) return false; // one label, or an IPv4 address
  return labels.every((c) => DOMAIN_COMPONENT.test(c));
}

/** True when `ref` is a reference `docker run` can only read as an image, never as an option. */
export function isImageReference(ref: string): boolean {
  if (ref.length === 0 || ref.length > MAX_IMAGE_REFERENCE) return false;
  let rest = ref;
  const at = rest.indexOf('@');
  if (at >= 0) {
    if (!DIGEST.test(rest.slice(at + 1))) return false;
    rest = rest.slice(0, at);
  }
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    if (!TAG.test(rest.slice(colon + 1))) return false;
    rest = rest.slice(0, colon);
  }
  if (rest.length === 0 || rest.length > MAX_NAME || IMAGE_ID.test(rest)) return false;
  const parts = rest.split('/');
  // Like docker: the first part is a registry only if it has a dot or a port, or is localhost.
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!isDomain(first)) return false;
    parts.shift();
  }
  return parts.every((p) => PATH_COMPONENT.test(p));
}
