// Route keys: a CF uri normalised once, when it is registered, to the canonical form the table and
// the matcher share (the matcher's own parseRouteUri, so both always agree: `App.COM/Api/` → `app.com/api`).

import { parseRouteUri } from "../matcher/route-key.ts";

export function normaliseRouteKey(uri: string): string | undefined {
  const q = uri.search(/[?#]/);
  return parseRouteUri(q >= 0 ? uri.slice(0, q) : uri)?.canonical ?? undefined;
}
