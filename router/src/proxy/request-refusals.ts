// Stage 3 of the request path (reject-hostile): which requests the router refuses before routing, with
// the status RFC 9112 asks for, and which ones uWebSockets.js 20.30 closes by itself after handing them
// over (so no answer can reach the client). The rules are pure functions over header values; the one
// function that reads uWS's HttpRequest runs only inside the handler (issues 5, 16 and 26).

import type { HttpRequest } from "uWebSockets.js";
import type { RouterMetrics } from "../status/router-metrics.ts";
import { BodyMode, type Exchange } from "./exchange.ts";
import { RouterErrors, type RouterError } from "./router-errors.ts";

/** The refusals this stage adds to RouterErrors; each is answered with `Connection: close`. */
export const RequestRefusals = {
  /** RFC 9112 §6.1: a transfer coding the server does not implement is answered 501 (as nginx does) */
  unknownTransferCoding: {
    status: "501 Not Implemented",
    code: "unknown_transfer_coding",
    body: () => "501 Not Implemented: the router implements only the chunked transfer coding; send the body with Content-Length or Transfer-Encoding: chunked.\n",
  },
  /** RFC 9112 §6.3: chunked applied twice, not last, or an empty or malformed list: the length cannot be known */
  invalidTransferEncoding: {
    status: "400 Bad Request",
    code: "invalid_transfer_encoding",
    body: () => "400 Bad Request: the Transfer-Encoding header is malformed (chunked must be the last coding, and appear once).\n",
  },
  /** RFC 9112 §3.2: more than one Host line is answered 400 (the router would route by one, the app read another) */
  duplicateHost: {
    status: "400 Bad Request",
    code: "duplicate_host",
    body: () => "400 Bad Request: the request has more than one Host header.\n",
  },
} as const satisfies Record<string, RouterError>;

/**
 * Why uWS 20.30 closes a connection by itself right after the handler returned, so that the router's
 * answer never leaves (measured: even an answer written inside the handler is dropped with the socket).
 * Only the first Content-Length counts: uWS frames the body by it.
 */
export const EngineCloses = {
  /** not a plain decimal after trimming spaces (`abc`, `+5`, `-1`, `5, 5`) */
  contentLengthNotDigits: "content_length_not_digits",
  /** more than 9 digits (1,000,000,000 bytes or more, or zeros in front): uWS refuses to count that far */
  contentLengthOver9Digits: "content_length_over_9_digits",
} as const;
export type EngineClose = (typeof EngineCloses)[keyof typeof EngineCloses];

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * The Transfer-Encoding field values of one request (each header line's value, in order), judged as
 * RFC 9112 §6 says: only exactly `chunked` is accepted; a coding the router does not implement (gzip,
 * identity, `xchunked`, any other name, or chunked with parameters) is 501; chunked twice or not
 * last, an empty list or a malformed element is 400. Empty list elements are ignored (RFC 9110 §5.6.1).
 */
export function transferEncodingRefusal(values: readonly string[]): RouterError | undefined {
  if (values.length === 1 && values[0]!.length === 7 && values[0]!.toLowerCase() === "chunked") return undefined; // the common case
  const codings: string[] = [];
  for (const value of values)
    for (const element of value.split(",")) {
      const coding = element.trim();
      if (coding !== "") codings.push(coding.toLowerCase());
    }
  if (codings.length === 0) return RequestRefusals.invalidTransferEncoding;
  let chunked = 0;
  let unknown = false;
  for (const coding of codings) {
    const name = coding.split(";", 1)[0]!.trim();
    if (!TCHAR.test(name)) return RequestRefusals.invalidTransferEncoding;
    if (coding === "chunked") chunked++;
    else unknown = true;
  }
  if (unknown) return RequestRefusals.unknownTransferCoding;
  if (chunked !== 1) return RequestRefusals.invalidTransferEncoding;
  return undefined;
}

/** Whether uWS 20.30 closes the connection after handing over a request with this (first) Content-Length. */
export function engineClosesOnContentLength(first: string): EngineClose | undefined {
  const v = first.trim();
  if (!/^\d+$/.test(v)) return EngineCloses.contentLengthNotDigits;
  if (v.length > 9) return EngineCloses.contentLengthOver9Digits;
  return undefined;
}

/**
 * Stage 3, called in the handler once the request is copied: the error to refuse it with (the caller
 * answers it and closes the connection), or undefined to go on. `copyProblem` is what stage 1 found
 * (two different or malformed Content-Lengths, headers over the limit). Every refusal is counted by its
 * X-Cf-Routererror code; a request uWS will close before any answer is counted as an engine close
 * instead, and still refused, so nothing of it is forwarded.
 */
export function refuseRequest(ex: Exchange, req: HttpRequest, copyProblem: RouterError | undefined, maxBodyBytes: number, metrics: RouterMetrics): RouterError | undefined {
  let err = copyProblem;
  if (err === undefined) {
    if (ex.bodyMode === BodyMode.Chunked) err = transferEncodingRefusal(transferEncodingValues(req));
    else if (ex.contentLength > maxBodyBytes) err = RouterErrors.payloadTooLarge;
    // stage 1 keeps the last Host line; uWS's getHeader gives the first: two lines that differ are
    // caught (two equal lines route the same either way)
    if (err === undefined && req.getHeader("host") !== ex.host) err = RequestRefusals.duplicateHost;
  }
  if (ex.bodyMode === BodyMode.Length || err === RouterErrors.badRequest) {
    const closes = engineClosesOnContentLength(req.getHeader("content-length"));
    if (closes !== undefined) {
      metrics.countEngineClose(closes);
      return err ?? RouterErrors.payloadTooLarge;
    }
  }
  if (err !== undefined) metrics.countRefusal(err.code);
  return err;
}

function transferEncodingValues(req: HttpRequest): string[] {
  const values: string[] = [];
  req.forEach((k, v) => {
    if (k === "transfer-encoding") values.push(v);
  });
  return values;
}
