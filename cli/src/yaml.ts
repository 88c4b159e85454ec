// A small YAML subset for manifests (no YAML package is installed): block mappings and sequences
// by indentation, plain/quoted scalars, flow lists `[a, b]`, `{}`, comments, `|`/`>` block
// scalars and a leading `---`. Anchors, tags and multi-document files are refused with a clear error.

export class YamlError extends Error {
  override name = "YamlError";
  constructor(message: string, readonly line: number) {
    super(`line ${line}: ${message}`);
  }
}

interface Line {
  indent: number;
  text: string;
  no: number;
}

function stripComment(s: string): string {
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === "\\" && quote === '"') i++; // an escape: \" does not end the string
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(s[i - 1]!))) return s.slice(0, i);
  }
  return s;
}

/** Deeper than any manifest; past it a document is refused (issue 19: 50,000 nested `[` took 7 s, then overflowed the stack). */
export const MAX_NESTING = 64;

/** How deep `[`/`{` nest in a flow scalar, quotes skipped: one pass, so no input costs more than its length. */
function flowDepth(s: string): number {
  let depth = 0, max = 0, quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === "\\" && quote === '"') i++; // an escape: \" does not end the string
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "[" || c === "{") max = Math.max(max, ++depth);
    else if (c === "]" || c === "}") depth--;
  }
  return max;
}

export function scalar(raw: string, no: number, nested = false): unknown {
  const s = raw.trim();
  if (!nested && (s.startsWith("[") || s.startsWith("{")) && flowDepth(s) > MAX_NESTING) throw new YamlError(`lists and maps nested deeper than ${MAX_NESTING} levels`, no);
  if (s === "" || s === "~" || s === "null" || s === "Null" || s === "NULL") return null;
  if (s.startsWith('"')) {
    if (!s.endsWith('"') || s.length < 2) throw new YamlError(`unterminated string ${s}`, no);
    try {
      return JSON.parse(s);
    } catch {
      throw new YamlError(`bad double-quoted string ${s}`, no);
    }
  }
  if (s.startsWith("'")) {
    if (!s.endsWith("'") || s.length < 2) throw new YamlError(`unterminated string ${s}`, no);
    return s.slice(1, -1).replace(/''/g, "'");
  }
  if (s.startsWith("[")) {
    if (!s.endsWith("]")) throw new YamlError(`unterminated list ${s}`, no);
    const inner = s.slice(1, -1).trim();
    return inner === "" ? [] : splitFlow(inner).map((p) => scalar(p, no, true));
  }
  if (s === "{}") return {};
  if (s.startsWith("{")) {
    if (!s.endsWith("}")) throw new YamlError(`unterminated map ${s}`, no);
    const out: Record<string, unknown> = {};
    for (const part of splitFlow(s.slice(1, -1))) {
      const i = part.indexOf(":");
      if (i < 0) throw new YamlError(`expected key: value in ${s}`, no);
      setKey(out, String(scalar(part.slice(0, i), no, true)), scalar(part.slice(i + 1), no, true));
    }
    return out;
  }
  if (s.startsWith("&") || s.startsWith("*") || s.startsWith("!")) throw new YamlError(`anchors, aliases and tags are not supported (${s})`, no);
  if (/^(true|True|TRUE|yes|Yes)$/.test(s)) return true;
  if (/^(false|False|FALSE|no|No)$/.test(s)) return false;
  if (/^[-+]?\d+$/.test(s)) return Number(s);
  if (/^[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return Number(s);
  return s;
}

/** `map[key] = value`, except that a key "__proto__" stays a key instead of replacing the prototype (issue 19). */
function setKey(map: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
  else map[key] = value;
}

function splitFlow(s: string): string[] {
  const parts: string[] = [];
  let depth = 0, quote: string | undefined, start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === "\\" && quote === '"') i++; // an escape: \" does not end the string
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "[" || c === "{") depth++;
    else if (c === "]" || c === "}") depth--;
    else if (c === "," && depth === 0) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

/** Finds `key: value` (the colon must be followed by a space or the end); undefined if not a mapping entry. */
function splitKey(text: string): [string, string] | undefined {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === "\\" && quote === '"') i++; // an escape: \" does not end the string
      else if (c === quote) quote = undefined;
    } else if ((c === '"' || c === "'") && i === 0) quote = c;
    else if (c === ":" && (i + 1 === text.length || text[i + 1] === " ")) return [text.slice(0, i).trim(), text.slice(i + 1).trim()];
    else if (c === "[" || c === "{") return undefined;
  }
  return undefined;
}

export function parseYaml(source: string): unknown {
  const raw = source.replace(/\r\n/g, "\n").split("\n");
  const lines: Line[] = [];
  for (let i = 0; i < raw.length; i++) {
    const full = raw[i]!;
    if (/^\t/.test(full)) throw new YamlError("tabs are not allowed for indentation", i + 1);
    const text = stripComment(full).replace(/\s+$/, "");
    if (text.trim() === "") continue;
    if (text === "---" && lines.length === 0) continue;
    if (text === "---" || text === "...") throw new YamlError("only one YAML document is supported", i + 1);
    lines.push({ indent: text.length - text.trimStart().length, text: text.trim(), no: i + 1 });
  }
  if (lines.length === 0) return null;
  let pos = 0;

  const blockScalar = (style: string, parentIndent: number): string => {
    const out: string[] = [];
    // block scalars keep their own lines (comments inside them were stripped; acceptable for manifests)
    while (pos < lines.length && lines[pos]!.indent > parentIndent) out.push(lines[pos++]!.text);
    return style.startsWith("|") ? out.join("\n") + (style === "|-" ? "" : "\n") : out.join(" ") + (style === ">-" ? "" : "\n");
  };

  const value = (rest: string, indent: number, no: number): unknown => {
    if (rest === "") {
      if (pos < lines.length && lines[pos]!.indent > indent) return node(lines[pos]!.indent);
      if (pos < lines.length && lines[pos]!.indent === indent && lines[pos]!.text.startsWith("- ")) return node(indent);
      return null;
    }
    if (/^[|>][-+]?$/.test(rest)) return blockScalar(rest, indent);
    return scalar(rest, no);
  };

  let depth = 0;
  const node = (indent: number): unknown => {
    if (++depth > MAX_NESTING) throw new YamlError(`lists and maps nested deeper than ${MAX_NESTING} levels`, lines[pos]!.no);
    try {
      return nodeAt(indent);
    } finally {
      depth--;
    }
  };

  const nodeAt = (indent: number): unknown => {
    const first = lines[pos]!;
    if (first.text === "-" || first.text.startsWith("- ")) {
      const list: unknown[] = [];
      while (pos < lines.length && lines[pos]!.indent === indent && (lines[pos]!.text === "-" || lines[pos]!.text.startsWith("- "))) {
        const l = lines[pos]!;
        const rest = l.text.slice(1).trim();
        if (rest !== "" && splitKey(rest) && !/^["'[{]/.test(rest)) {
          // "- key: value" starts a mapping whose keys sit at indent + 2
          lines[pos] = { indent: indent + 2, text: rest, no: l.no };
          list.push(node(indent + 2));
        } else {
          pos++;
          list.push(value(rest, indent, l.no));
        }
      }
      if (pos < lines.length && lines[pos]!.indent > indent) throw new YamlError("unexpected indentation", lines[pos]!.no);
      return list;
    }
    const map: Record<string, unknown> = {};
    while (pos < lines.length && lines[pos]!.indent === indent) {
      const l = lines[pos]!;
      const kv = splitKey(l.text);
      if (!kv) throw new YamlError(`expected "key: value", got "${l.text}"`, l.no);
      const key = String(scalar(kv[0], l.no));
      // own keys only: `in` also finds the prototype's ("constructor", "toString") and called them duplicates
      if (Object.hasOwn(map, key)) throw new YamlError(`duplicate key "${key}"`, l.no);
      pos++;
      setKey(map, key, value(kv[1], indent, l.no));
    }
    if (pos < lines.length && lines[pos]!.indent > indent) throw new YamlError("unexpected indentation", lines[pos]!.no);
    return map;
  };

  const root = node(lines[0]!.indent);
  if (pos < lines.length) throw new YamlError("unexpected content after the document", lines[pos]!.no);
  return root;
}
