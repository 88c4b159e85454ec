// How deep a parsed request body nests, checked without recursion: a body deeper than any request of
// the API is refused before validation, which recurses into it (issue 19: Elysia's ValidationError
// stringified an unknown field nested 30,000 deep and the controller answered 500).

/** Deeper than any body the API takes (service parameters and credentials are a few levels). */
export const MAX_BODY_DEPTH = 64;

/** True when `body` has a list or map nested more than `max` levels deep. */
export function nestedDeeperThan(body: unknown, max: number = MAX_BODY_DEPTH): boolean {
  const stack: [unknown, number][] = [[body, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (depth >= max) return true;
    for (const x of Array.isArray(v) ? v : Object.values(v)) if (x !== null && typeof x === "object") stack.push([x, depth + 1]);
  }
  return false;
}
