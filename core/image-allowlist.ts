/**
 * EXEC_IMAGE_ALLOWLIST: which images exec requests may run. Entries are image references with
 * `*` (any run of characters except `/`), `**` (anything) and `?` (one character). An entry
 * without a tag or digest also matches every tag of that repository, as operators write
 * "python" meaning python:3.12 and python:latest alike. An empty list allows any image.
 */
export function imageAllowed(image: string, allowlist: readonly string[]): boolean {
  if (allowlist.length === 0) return true;
  return allowlist.some((entry) => globToRegExp(entry).test(image));
}

function globToRegExp(entry: string): RegExp {
  let source = '';
  for (let i = 0; i < entry.length; i++) {
    const c = entry[i] as string;
    if (c === '*' && entry[i + 1] === '*') {
      source += '.*';
      i++;
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // The last path segment has no tag or digest: any tag or digest of it matches too.
  const lastSegment = entry.slice(entry.lastIndexOf('/') + 1);
  const tagged = lastSegment.includes(':') || lastSegment.includes('@');
  return new RegExp(`^${source}${tagged ? '' : '(?:[:@][^/]*)?'}$`);
}
