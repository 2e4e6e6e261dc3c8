/**
 * One name a field goes by in exports. `scale` turns its unit into the documented one
 * (0.01 for a percentage where a share 0–1 is documented, 1/60 for seconds where minutes are).
 */
export interface Alias {
  name: string;
  scale?: number;
  /** The name's dotted segments, raw and normalised once, for lookups. */
  segments: ReadonlyArray<readonly [string, string]>;
}

/** A name as written in a field list: plain, or `[name, scale]` for another unit. */
export type NameSpec = string | readonly [string, number];

export type Parsed<T> = { ok: true; value: T } | { ok: false; why: string };

export interface Field<T = unknown> {
  /** The documented name first, then the spellings exports use. */
  readonly names: readonly Alias[];
  readonly parse: (value: unknown, alias: Alias) => Parsed<T>;
  /** Its keys or items are data read as a whole (a tag map, a list only counted): never "ignored". */
  readonly opaque?: boolean;
  /** A list where [] states there are none (no incidents, no findings): its item fields count as known. */
  readonly emptyMeansNone?: boolean;
}

export const PERCENT = 0.01;
const MISSING = ' is missing.';

/** Spellings differ in case and separators across exports: MfaEnabled, mfa-enabled, "MFA enabled". */
const normalise = (name: string) => name.toLowerCase().replace(/[^a-z0-9]/g, '');
const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const toAliases = (names: readonly NameSpec[]): Alias[] =>
  names.map((n) => {
    const [name, scale] = typeof n === 'string' ? [n, undefined] : n;
    const segments = name.split('.').map((seg) => [seg, normalise(seg)] as const);
    return scale === undefined ? { name, segments } : { name, scale, segments };
  });

export function field<T>(
  names: readonly NameSpec[],
  parse: Field<T>['parse'],
  options: { opaque?: boolean; emptyMeansNone?: boolean } = {},
): Field<T> {
  return { names: toAliases(names), parse, ...options };
}

const NUMERIC = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** A number within [lo, hi]; numeric strings count (CSV exports), and an alias's scale applies. */
export function num(names: readonly NameSpec[], lo = 0, hi = Number.POSITIVE_INFINITY): Field<number> {
  const aliases = toAliases(names);
  const percentName = aliases.find((a) => a.scale === PERCENT)?.name;
  return {
    names: aliases,
    parse(value, alias) {
      const n =
        typeof value === 'number'
          ? value
          : typeof value === 'string' && NUMERIC.test(value.trim())
            ? +value
            : NaN;
      if (!Number.isFinite(n)) return { ok: false, why: 'is not a number' };
      const scaled = n * (alias.scale ?? 1);
      if (scaled >= lo && scaled <= hi) return { ok: true, value: scaled };
      const asPercent = n * PERCENT;
      const hint =
        percentName && scaled > hi && asPercent >= lo && asPercent <= hi
          ? `; a percentage goes in ${percentName}`
          : '';
      return {
        ok: false,
        why: `(${value}) is outside ${lo}–${hi === Number.POSITIVE_INFINITY ? '∞' : hi}${hint}`,
      };
    },
  };
}

/** A share 0–1. */
export const share = (names: readonly NameSpec[]) => num(names, 0, 1);

const YES = new Set(['true', 'yes', 'y', '1', 'on', 'enabled']);
const NO = new Set(['false', 'no', 'n', '0', 'off', 'disabled', 'none']);

/** true or false; also the words exports use for them, plus a field's own (`internet-facing`). */
export function flag(
  names: readonly NameSpec[],
  words: { yes?: string[]; no?: string[] } = {},
): Field<boolean> {
  const yes = new Set([...YES, ...(words.yes ?? [])]);
  const no = new Set([...NO, ...(words.no ?? [])]);
  return field(names, (value) => {
    if (typeof value === 'boolean') return { ok: true, value };
    const word = String(value).trim().toLowerCase();
    if ((typeof value === 'string' || typeof value === 'number') && yes.has(word))
      return { ok: true, value: true };
    if ((typeof value === 'string' || typeof value === 'number') && no.has(word))
      return { ok: true, value: false };
    return { ok: false, why: 'is not true or false' };
  });
}

/** A string; a number is taken as its text (ids exported as numbers). */
export const text = (names: readonly NameSpec[]) =>
  field<string>(names, (value) =>
    typeof value === 'string' || typeof value === 'number'
      ? { ok: true, value: String(value) }
      : { ok: false, why: 'is not a string' },
  );

export const list = (
  names: readonly NameSpec[],
  options: { opaque?: boolean; emptyMeansNone?: boolean } = {},
) =>
  field<unknown[]>(
    names,
    (value) => (Array.isArray(value) ? { ok: true, value } : { ok: false, why: 'is not an array' }),
    options,
  );

export const object = (names: readonly NameSpec[], options: { opaque?: boolean } = {}) =>
  field<Record<string, unknown>>(
    names,
    (value) => (isRecord(value) ? { ok: true, value } : { ok: false, why: 'is not an object' }),
    options,
  );

/** One item of a list, with its path for gap sentences (`users[2]`). */
export interface Item {
  value: unknown;
  at: string;
}

type Need = 'required' | 'optional' | 'label';

/**
 * Reads fields of an untrusted JSON file by any of their accepted names. A missing or
 * unusable field is recorded as a gap and answered with undefined, so a scorer carries on
 * with what it has and the gaps lower its confidence instead of crashing the batch. It also
 * records which fields were understood under which name, and which keys it looked at, so
 * POST /batches/validate can say what a file's fields meant to the scorer.
 */
export class InputReader {
  readonly gaps: string[] = [];
  /** Fields asked for, and how many were usable: the basis of confidence. */
  asked = 0;
  found = 0;
  /** Field path in documented names (`[]` for any item) → the names it was found under. */
  readonly understood = new Map<string, Set<string>>();
  private readonly emptyLists = new Set<string>();
  private readonly used = new WeakMap<object, Set<string>>();
  private readonly opaque = new WeakSet<object>();
  private readonly keyIndex = new WeakMap<object, Map<string, string>>();
  /** Item path → its pattern (`users[3]` → `users[]`), so reads need no regex. */
  private readonly shapes = new Map<string, string>();

  /** A field the rubric needs: absent or unusable is a gap. */
  get<T>(from: unknown, f: Field<T>, at = ''): T | undefined {
    return this.read(from, f, at, 'required');
  }

  /** A field the rubric can do without: absent costs nothing, present but unusable is a gap. */
  opt<T>(from: unknown, f: Field<T>, at = ''): T | undefined {
    return this.read(from, f, at, 'optional');
  }

  /** An identifier for evidence: never a gap, never part of confidence. */
  label(from: unknown, f: Field<string>, at = ''): string | undefined {
    return this.read(from, f, at, 'label');
  }

  /** A list's items with their paths; [] when it is absent (a gap unless optional). */
  items(from: unknown, f: Field<unknown[]>, at = '', need: 'required' | 'optional' = 'required'): Item[] {
    const path = join(at, f);
    const values = this.read(from, f, at, need);
    if (values?.length === 0 && f.emptyMeansNone) this.emptyLists.add(pattern(path));
    const shape = `${pattern(path)}[]`;
    return (values ?? []).map((value, i) => {
      const item = `${path}[${i}]`;
      this.shapes.set(item, shape);
      return { value, at: item };
    });
  }

  gap(sentence: string): void {
    this.gaps.push(sentence);
  }

  /** Drops the "is missing" gaps of one field path, for a caller that names it once instead. */
  dropMissing(path: string): void {
    const kept = this.gaps.filter(
      (g) => !(g.endsWith(MISSING) && pattern(g.slice(0, -MISSING.length)) === path),
    );
    this.gaps.splice(0, this.gaps.length, ...kept);
  }

  /** Whether a field path was understood somewhere, or is vacuously known (its list was []). */
  knows(path: string): boolean {
    if (this.understood.has(path)) return true;
    for (const list of this.emptyLists) if (path.startsWith(`${list}[]`)) return true;
    return false;
  }

  /** Paths (as the input spells them, `[]` for any item) present in `input` that nothing read. */
  ignored(input: unknown): string[] {
    const seen = new Set<string>();
    const read = new Set<string>();
    const walk = (value: unknown, path: string) => {
      if (typeof value === 'object' && value !== null && this.opaque.has(value)) return;
      if (Array.isArray(value)) {
        for (const item of value) walk(item, `${path}[]`);
        return;
      }
      if (!isRecord(value)) return;
      const used = this.used.get(value);
      for (const [key, child] of Object.entries(value)) {
        const p = path ? `${path}.${key}` : key;
        if (!used?.has(key)) {
          seen.add(p);
          continue;
        }
        read.add(p);
        walk(child, p);
      }
    };
    walk(input, '');
    return [...seen].filter((p) => !read.has(p)).sort();
  }

  private read<T>(from: unknown, f: Field<T>, at: string, need: Need): T | undefined {
    const path = join(at, f);
    let unusable: string | undefined;
    for (const alias of f.names) {
      const hit = this.lookup(from, alias);
      if (!hit) continue;
      const parsed = f.parse(hit.value, alias);
      if (parsed.ok) {
        if (need !== 'label') {
          this.asked++;
          this.found++;
        }
        const p = at ? `${this.shapes.get(at) ?? pattern(at)}.${f.names[0]?.name}` : path;
        this.understood.set(p, (this.understood.get(p) ?? new Set()).add(hit.name));
        if (f.opaque && typeof hit.value === 'object' && hit.value !== null) this.opaque.add(hit.value);
        return parsed.value;
      }
      const given = hit.name === f.names[0]?.name ? '' : ` (given as ${hit.name})`;
      unusable ??= `${path}${given} ${parsed.why}.`;
    }
    if (need === 'label') return undefined;
    if (unusable) {
      this.asked++;
      this.gaps.push(unusable);
    } else if (need === 'required') {
      this.asked++;
      this.gaps.push(`${path}${MISSING}`);
    }
    return undefined;
  }

  /** Follows a (dotted) name through `from`; every key it matches counts as looked at. */
  private lookup(from: unknown, alias: Alias): { value: unknown; name: string } | undefined {
    let current = from;
    const keys: string[] = [];
    for (const [segment, normalised] of alias.segments) {
      if (!isRecord(current)) return undefined;
      const key = this.keyOf(current, segment, normalised);
      if (key === undefined) return undefined;
      const used = this.used.get(current) ?? new Set<string>();
      this.used.set(current, used.add(key));
      keys.push(key);
      current = current[key];
    }
    // An empty CSV cell is as good as absent.
    if (current === undefined || current === null || current === '') return undefined;
    return { value: current, name: keys.join('.') };
  }

  private keyOf(obj: Record<string, unknown>, name: string, normalised: string): string | undefined {
    if (Object.hasOwn(obj, name)) return name;
    let index = this.keyIndex.get(obj);
    if (!index) {
      index = new Map();
      for (const key of Object.keys(obj)) if (!index.has(normalise(key))) index.set(normalise(key), key);
      this.keyIndex.set(obj, index);
    }
    return index.get(normalised);
  }
}

const join = (at: string, f: Field<unknown>) => (at ? `${at}.${f.names[0]?.name}` : (f.names[0]?.name ?? ''));
/** `users[3].mfa_enabled` → `users[].mfa_enabled`. */
const pattern = (path: string) => path.replace(/\[\d+\]/g, '[]');
