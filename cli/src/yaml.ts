// Reads manifest YAML with a maintained parser (the `yaml` package, chosen over Bun.YAML: its errors
// name the line and column, it refuses duplicate keys as cf does, and it keeps merge keys; see
// README "Manifests"), then checks what a manifest may hold: plain data, no cycles through aliases,
// at most 64 levels of nesting. Every problem is a YamlError that names the line.

import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node as YamlNode } from "yaml";

export class YamlError extends Error {
  override name = "YamlError";
  constructor(message: string, readonly line: number) {
    super(`line ${line}: ${message}`);
  }
}

/** Deeper than any manifest; past it a document is refused (issue 19: 50,000 nested `[` took 7 s, then overflowed the stack). */
export const MAX_NESTING = 64;
/** Aliases expanded into one document at most (a "billion laughs" file is refused, not built). */
export const MAX_ALIASES = 100;

/** How deep `[`/`{` nest in the text, quotes and comments skipped: one pass, so no input costs more than its length. */
function flowDepth(s: string): { depth: number; line: number } {
  let depth = 0, line = 1, quote: string | undefined, comment = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "\n") {
      line++;
      comment = false;
      continue;
    }
    if (comment) continue;
    if (quote) {
      if (c === "\\" && quote === '"') i++; // an escape: \" does not end the string
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(s[i - 1]!))) comment = true;
    else if (c === "[" || c === "{") {
      if (++depth > MAX_NESTING) return { depth, line };
    } else if (c === "]" || c === "}") depth = Math.max(0, depth - 1);
  }
  return { depth: 0, line };
}

/** The parser's error codes, said the way a person fixing a manifest needs to hear them. */
const PLAIN: Record<string, string> = {
  TAB_AS_INDENT: "tabs are not allowed as indentation; indent with spaces",
  DUPLICATE_KEY: "duplicate key",
  BAD_INDENT: "bad indentation: keys of one mapping must line up, and a list's items too",
  MULTILINE_IMPLICIT_KEY: "bad indentation: a key must be on one line (is the next line indented deeper than this one's key?)",
  BLOCK_AS_IMPLICIT_KEY: "bad indentation: a nested mapping starts on its own line, indented under its key",
  MISSING_CHAR: "a quote or bracket is not closed",
};

function describeParseError(e: { code: string; message: string }): string {
  const first = e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
  const plain = PLAIN[e.code];
  if (!plain) return first;
  return plain.toLowerCase().includes(first.toLowerCase()) ? plain : `${plain} (${first})`;
}

const INDENT_CODES = new Set(["BAD_INDENT", "MULTILINE_IMPLICIT_KEY", "BLOCK_AS_IMPLICIT_KEY"]);

/**
 * The parser blames the line whose value it was reading when the next line is indented too deep
 * (`memory: 256M` then `    instances: 2`); a person needs to hear about the next line.
 */
function blameIndent(source: string, line: number, code: string): { line: number; message: string } | undefined {
  if (!INDENT_CODES.has(code)) return undefined;
  const lines = source.split(/\r?\n/);
  const at = lines[line - 1];
  if (at === undefined || /:\s*(#.*)?$/.test(at)) return undefined; // a key that opens a block: its children may be deeper
  const keyColumn = /^(\s*(?:-\s+)*)/.exec(at)![1]!.length;
  for (let n = line; n < lines.length; n++) {
    const next = lines[n]!;
    if (/^\s*(#.*)?$/.test(next)) continue;
    const indent = /^\s*/.exec(next)![0].length;
    if (indent <= keyColumn) return undefined;
    return { line: n + 1, message: `bad indentation: this line is indented deeper than the key on line ${line} above it, which already has a value; line up keys of one mapping` };
  }
  return undefined;
}

/** The line of a parser node (1-based). */
function lineOf(lc: LineCounter, node: { range?: [number, number, number] | null } | null | undefined): number {
  return node?.range ? lc.linePos(node.range[0]).line : 1;
}

/**
 * Refuses what the parser accepts but a manifest must not hold, without expanding aliases more than
 * once: cycles (`&a [*a]`), aliases to nothing, keys that are lists or maps, and collections nested
 * past MAX_NESTING (counted through aliases, memoised, so a billion-laughs file costs its own size).
 */
function checkDocument(doc: Document, lc: LineCounter): void {
  const depthOf = new Map<unknown, number>();
  const visiting = new Set<unknown>();
  const walk = (node: unknown, level: number): number => {
    if (isAlias(node)) {
      const target = node.resolve(doc);
      if (!target) throw new YamlError(`unknown alias *${node.source}: define the anchor &${node.source} before using it`, lineOf(lc, node));
      if (visiting.has(target)) throw new YamlError(`the alias *${node.source} refers to a list or mapping it is inside of`, lineOf(lc, node));
      return walk(target, level);
    }
    if (!isMap(node) && !isSeq(node)) return 0;
    const known = depthOf.get(node);
    if (known !== undefined) {
      if (level + known > MAX_NESTING) throw new YamlError(`lists and maps nested deeper than ${MAX_NESTING} levels`, lineOf(lc, node));
      return known;
    }
    if (level + 1 > MAX_NESTING) throw new YamlError(`lists and maps nested deeper than ${MAX_NESTING} levels`, lineOf(lc, node));
    visiting.add(node);
    let deepest = 0;
    for (const item of node.items as unknown[]) {
      if (isPair(item)) {
        const key = item.key as YamlNode | null;
        if (key && !isScalar(key) && !isAlias(key)) throw new YamlError("a key must be a plain value, not a list or mapping", lineOf(lc, key));
        if (isAlias(key) && !isScalar(key.resolve(doc))) throw new YamlError("a key must be a plain value, not a list or mapping", lineOf(lc, key));
        deepest = Math.max(deepest, walk(item.value, level + 1));
      } else deepest = Math.max(deepest, walk(item, level + 1));
    }
    visiting.delete(node);
    depthOf.set(node, deepest + 1);
    return deepest + 1;
  };
  walk(doc.contents, 0);
}

const OPTIONS = {
  // cf reads manifests with go-yaml: merge keys (`<<: *defaults`) work, and a key given twice is an error
  merge: true,
  uniqueKeys: true,
  // the core schema only: `!!binary`, `!!timestamp`, `!!set` stay strings instead of Buffers, Dates and Sets
  schema: "core" as const,
  resolveKnownTags: false,
  logLevel: "error" as const,
};

export interface YamlDocument {
  /** the document as plain data */
  value: unknown;
  /** the line its `---` (or its first content) is on */
  line: number;
}

/** Every document of a YAML stream (`---` separated), as plain data. Throws YamlError naming the line. */
export function parseYamlDocuments(source: string): YamlDocument[] {
  const flow = flowDepth(source);
  if (flow.depth > MAX_NESTING) throw new YamlError(`lists and maps nested deeper than ${MAX_NESTING} levels`, flow.line);
  const lc = new LineCounter();
  const docs = parseAllDocuments(source, { ...OPTIONS, lineCounter: lc });
  // a stream without documents (only comments) carries its errors itself
  const streamError = "empty" in docs ? docs.errors[0] : undefined;
  if (streamError) throw new YamlError(describeParseError(streamError), streamError.linePos?.[0].line ?? 1);
  const out: YamlDocument[] = [];
  for (const doc of docs) {
    const e = doc.errors[0];
    if (e) {
      const line = e.linePos?.[0].line ?? 1;
      const blamed = blameIndent(source, line, e.code);
      throw blamed ? new YamlError(blamed.message, blamed.line) : new YamlError(describeParseError(e), line);
    }
    checkDocument(doc, lc);
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (err) {
      throw new YamlError(`aliases expand to too much (${(err as Error).message})`, lineOf(lc, doc.contents as YamlNode));
    }
    out.push({ value, line: doc.range ? lc.linePos(doc.range[0]).line : 1 });
  }
  return out;
}

/** The first document of a YAML stream (null for an empty one). */
export function parseYaml(source: string): unknown {
  return parseYamlDocuments(source)[0]?.value ?? null;
}
