/**
 * EXEC_IMAGE_ALLOWLIST: which images exec requests may run. Pure; the processor checks before
 * anything is pulled or started.
 *
 * Both sides are compared as normalized references, so `python`, `python:latest`,
 * `docker.io/library/python:latest` and `index.docker.io/library/python` are one image. In a
 * pattern, `*` is any run of characters but `/`, `**` any run at all, and `?` one character
 * but `/`: `python:*` allows every python tag and `ghcr.io/acme/*` every image directly under
 * acme, but never `pythonista/x` nor `ghcr.io/acme/team/x` (`ghcr.io/acme/**` does). A pattern
 * without tag or digest allows every tag and digest of that repository. An empty list allows
 * any image; any other list refuses references the engine reads as image ids.
 */
export function imageAllowed(image: string, allowlist: readonly string[]): boolean {
  if (allowlist.length === 0) return true;
  if (namesAnImageId(image)) return false;
  const ref = normalizeImage(image);
  if (ref === undefined) return false;
  // Patterns come from a comma-separated list: spaces around them are the list's, not theirs.
  return allowlist.some((pattern) => matches(ref, pattern.trim()));
}

/**
 * The engine takes `sha256:<hex>` and a bare hex string it knows no repository by as an image
 * id (or a prefix of one), whatever repository that image belongs to: `2e97e03a` or
 * `sha256:2e97…` would run a local image under a pattern such as `*`. Such a reference names no
 * repository, so no pattern can allow it.
 */
function namesAnImageId(image: string): boolean {
  return /^sha256:/i.test(image) || /^[0-9a-f]+$/i.test(image);
}

interface ImageRef {
  /** Registry and path, docker.io's defaults removed: `python`, `ghcr.io/acme/tool`. */
  repository: string;
  /** `:tag`, `@sha256:…`, or both; `:latest` when the reference has neither. */
  suffix: string;
}

const DOCKER_HUB = /^(?:docker\.io|index\.docker\.io|registry-1\.docker\.io)\//;
const DOCKER_HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/**
 * The registry the engine pulls a reference from: its first part when that looks like a host
 * (a dot, a port, or `localhost`), else Docker Hub (`docker.io`, whatever alias named it).
 */
export function registryOf(image: string): string {
  const slash = image.indexOf('/');
  const first = slash > 0 ? image.slice(0, slash) : '';
  const host = first && (/[.:]/.test(first) || first === 'localhost') ? first.toLowerCase() : 'docker.io';
  return DOCKER_HUB_HOSTS.has(host) ? 'docker.io' : host;
}

/** A registry server as an operator writes it (`https://registry.acme:5000/v2/`), as registryOf names it. */
export function registryHost(server: string): string {
  const host = (
    server
      .trim()
      .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
      .split('/')[0] ?? ''
  ).toLowerCase();
  return DOCKER_HUB_HOSTS.has(host) ? 'docker.io' : host;
}

/** Splits a reference into repository and tag/digest, Docker Hub's implied parts removed. */
export function normalizeImage(image: string): ImageRef | undefined {
  if (image === '' || /\s/.test(image)) return undefined;
  const at = image.indexOf('@');
  const digest = at >= 0 ? image.slice(at) : '';
  const name = at >= 0 ? image.slice(0, at) : image;
  // A tag is after the last `:` that follows the last `/` (an earlier `:` is a registry port).
  const colon = name.lastIndexOf(':');
  const tagged = colon > name.lastIndexOf('/');
  let repository = tagged ? name.slice(0, colon) : name;
  const tag = tagged ? name.slice(colon) : '';
  repository = repository.replace(DOCKER_HUB, '').replace(/^library\//, '');
  if (repository === '') return undefined;
  return { repository, suffix: tag || digest ? `${tag}${digest}` : ':latest' };
}

function matches(ref: ImageRef, pattern: string): boolean {
  const p = normalizePattern(pattern);
  if (p === undefined) return false;
  if (!glob(p.repository).test(ref.repository)) return false;
  return p.suffix === undefined || glob(p.suffix).test(ref.suffix);
}

/** Like normalizeImage, but a pattern without tag or digest keeps `suffix` undefined (any). */
function normalizePattern(pattern: string): { repository: string; suffix: string | undefined } | undefined {
  if (pattern === '') return undefined;
  const at = pattern.indexOf('@');
  const colon = pattern.lastIndexOf(':');
  const hasSuffix = at >= 0 || colon > pattern.lastIndexOf('/');
  const ref = normalizeImage(pattern);
  if (!ref) return undefined;
  return { repository: ref.repository, suffix: hasSuffix ? ref.suffix : undefined };
}

function glob(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === '*' && pattern[i + 1] === '*') {
      source += '.*';
      i++;
    } else if (ch === '*') source += '[^/]*';
    else if (ch === '?') source += '[^/]';
    else source += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}
