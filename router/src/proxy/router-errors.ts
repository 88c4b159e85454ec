// The errors the router itself answers with, as data: status line, X-Cf-Routererror value and a body
// that says what happened and what to do.

export interface RouterError {
  status: string;
  code: string;
  body: (host: string) => string;
}

export const RouterErrors = {
  emptyHost: { status: "400 Bad Request", code: "empty_host", body: () => "400 Bad Request: the request has no Host header.\n" },
  badRequest: { status: "400 Bad Request", code: "invalid_request", body: () => "400 Bad Request: malformed or ambiguous request framing.\n" },
  unknownRoute: {
    status: "404 Not Found",
    code: "unknown_route",
    body: (host: string) => `404 Not Found: Requested route ('${host}') does not exist.\n`,
  },
  payloadTooLarge: { status: "413 Payload Too Large", code: "request_too_large", body: () => "413 Payload Too Large: the request body is over the router's limit.\n" },
  headersTooLarge: {
    status: "431 Request Header Fields Too Large",
    code: "request_headers_too_large",
    body: () => "431 Request Header Fields Too Large: the request headers are over the router's limit.\n",
  },
  endpointFailure: { status: "502 Bad Gateway", code: "endpoint_failure", body: () => "502 Bad Gateway: Registered endpoint failed to handle the request.\n" },
  noEndpoints: {
    status: "503 Service Unavailable",
    code: "no_endpoints",
    body: (host: string) => `503 Service Unavailable: Requested route ('${host}') has no available endpoints.\n`,
  },
  endpointTimeout: { status: "504 Gateway Timeout", code: "endpoint_timeout", body: () => "504 Gateway Timeout: the endpoint did not answer in time.\n" },
} as const satisfies Record<string, RouterError>;
