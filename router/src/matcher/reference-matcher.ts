// The route matcher in plain TypeScript: the executable specification the WASM matcher is tested
// against, and a fallback. Semantics are documented at the top of route-key.ts.

import type { RouteMatcher } from "./route-matcher.ts";
import { parseRequest, parseRouteUri, utf8Length, wildcardFallbacks } from "./route-key.ts";

/** One path segment's node; `id` is -1 where no route ends here. */
interface PathNode {
  id: number;
  children: Map<string, PathNode> | null;
}

function newNode(): PathNode {
  return { id: -1, children: null };
}

export class ReferenceMatcher implements RouteMatcher {
  /** Normalised host (wildcards as `*.b.c`) -> the root of its path trie. */
  private readonly hosts = new Map<string, PathNode>();
  private count = 0;
  private matchedLength = 0;
  /** UTF-16 units of the target matched by the last `matchHost` hit (`lookup` turns it into bytes). */
  private matchedUnits = 0;

  get size(): number {
    return this.count;
  }

  /**
   * Bytes of the raw target, UTF-8 encoded, matched by the last successful lookup (0 for a route
   * without a path): the WASM matcher's unit, which sees the target as UTF-8 bytes.
   */
  get lastMatchedLength(): number {
    return this.matchedLength;
  }

  insert(uri: string, id: number): boolean {
    if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) return false;
    const key = parseRouteUri(uri);
    if (key === null) return false;
    let node = this.hosts.get(key.host);
    if (node === undefined) {
      node = newNode();
      this.hosts.set(key.host, node);
    }
    for (const segment of key.segments) {
      node.children ??= new Map();
      let child = node.children.get(segment);
      if (child === undefined) {
        child = newNode();
        node.children.set(segment, child);
      }
      node = child;
    }
    if (node.id < 0) this.count++;
    node.id = id;
    return true;
  }

  remove(uri: string): boolean {
    const key = parseRouteUri(uri);
    if (key === null) return false;
    const root = this.hosts.get(key.host);
    if (root === undefined) return false;
    const trail: PathNode[] = [root];
    let node = root;
    for (const segment of key.segments) {
      const child = node.children?.get(segment);
      if (child === undefined) return false;
      trail.push(child);
      node = child;
    }
    if (node.id < 0) return false;
    node.id = -1;
    this.count--;
    // Prune nodes left with neither a route nor children, bottom-up.
    for (let depth = key.segments.length; depth > 0; depth--) {
      const n = trail[depth]!;
      if (n.id >= 0 || (n.children !== null && n.children.size > 0)) return true;
      const parent = trail[depth - 1]!;
      parent.children!.delete(key.segments[depth - 1]!);
      if (parent.children!.size === 0) parent.children = null;
    }
    if (root.id < 0 && root.children === null) this.hosts.delete(key.host);
    return true;
  }

  lookup(host: string, path: string): number {
    const request = parseRequest(host, path);
    if (request === null) return -1;
    let id = this.matchHost(request.host, request.segments, request.ends);
    for (const wildcard of id < 0 ? wildcardFallbacks(request.host) : []) {
      id = this.matchHost(wildcard, request.segments, request.ends);
      if (id >= 0) break;
    }
    if (id >= 0) this.matchedLength = utf8Length(path.slice(0, this.matchedUnits));
    return id;
  }

  clear(): void {
    this.hosts.clear();
    this.count = 0;
  }

  /** Longest path-prefix match under one host key, or -1. */
  private matchHost(host: string, segments: readonly string[], ends: readonly number[]): number {
    const root = this.hosts.get(host);
    if (root === undefined) return -1;
    let node: PathNode = root;
    let best = node.id;
    let bestLength = 0;
    for (let i = 0; i < segments.length; i++) {
      const child: PathNode | undefined = node.children?.get(segments[i]!);
      if (child === undefined) break;
      node = child;
      if (node.id >= 0) {
        best = node.id;
        bestLength = ends[i]!;
      }
    }
    if (best >= 0) this.matchedUnits = bestLength;
    return best;
  }
}
