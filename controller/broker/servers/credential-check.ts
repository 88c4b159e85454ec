// The check every server skiff starts must pass before anything uses it (issue 24): the logins an
// attacker on loopback tries first (root, anonymous, postgres, default, guest, no user at all), with no or
// an empty password. A server that lets one in is stopped and refused. Raw sockets, no client library, so
// the check depends on nothing it checks.

import { closedByServer, ConnectError, converse, type Io, type SocketTarget } from "./socket-conversation.ts";

export class PasswordlessLoginError extends Error {
  override readonly name = "PasswordlessLoginError";
}

/** One login tried without credentials, and what the server did with it. */
export interface LoginAttempt {
  /** Who tried, and how: "root with an empty password over TCP 127.0.0.1:3306". */
  attempt: string;
  /** "unknown": the server neither let the login in nor refused it (no answer, an unexpected reply). */
  outcome: "refused" | "accepted" | "unknown";
  detail: string;
}

export interface CheckOptions {
  /** Stops the server: called before the error is thrown. */
  stop?: () => Promise<void>;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 5000;

/**
 * Throws (after `stop`) unless every attempt was refused. An attempt that got no clear answer counts
 * against the server too: a check that could not run proves nothing.
 */
export async function refuseUnlessAllRefused(server: string, attempts: LoginAttempt[], fix: string, stop?: () => Promise<void>): Promise<void> {
  const accepted = attempts.filter((a) => a.outcome === "accepted");
  const unknown = attempts.filter((a) => a.outcome === "unknown");
  if (accepted.length === 0 && unknown.length === 0) return;
  await stop?.();
  const stopped = stop ? "It has been stopped. " : "";
  if (accepted.length > 0) {
    const who = accepted.map((a) => `${a.attempt} (${a.detail})`).join("; ");
    throw new PasswordlessLoginError(`${server} lets in a login without credentials: ${who}. skiff refuses to use it. ${stopped}${fix}`);
  }
  const what = unknown.map((a) => `${a.attempt}: ${a.detail}`).join("; ");
  throw new PasswordlessLoginError(`could not check that ${server} refuses logins without credentials (${what}), so skiff refuses to use it. ${stopped}`.trimEnd());
}

// ---- MySQL / MariaDB ------------------------------------------------------------------------------

/** The MySQL protocol's handshake as `user` with an empty password (which is also "no password"). */
export async function tryMysqlLogin(host: string, port: number, user: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<LoginAttempt> {
  const attempt = `${user === "" ? "an anonymous user" : `'${user}'`} with an empty password over TCP ${host}:${port}`;
  return attemptLogin({ host, port }, timeoutMs, attempt, async (io) => {
    const readPacket = async () => {
      const head = await io.bytes(4);
      return { seq: head[3]!, payload: await io.bytes(head.readUIntLE(0, 3)) };
    };
    const greeting = await readPacket();
    // An error instead of a greeting: 1130 says nobody from this host may log in at all; others (too many
    // connections, host blocked) say nothing about credentials.
    if (greeting.payload[0] === 0xff) return { attempt, outcome: greeting.payload.readUInt16LE(1) === 1130 ? "refused" : "unknown", detail: mysqlError(greeting.payload) };
    if (greeting.payload[0] !== 10) return { attempt, outcome: "unknown", detail: `unexpected greeting (protocol ${greeting.payload[0]})` };
    const CLIENT_LONG_PASSWORD = 0x1;
    const CLIENT_PROTOCOL_41 = 0x200;
    const CLIENT_SECURE_CONNECTION = 0x8000;
    const CLIENT_PLUGIN_AUTH = 0x80000;
    const head = Buffer.alloc(32);
    head.writeUInt32LE(CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH, 0);
    head.writeUInt32LE(16 * 1024 * 1024, 4);
    head.writeUInt8(33, 8); // utf8_general_ci; 23 zero bytes follow
    // The auth response of an empty password is empty, whatever the scramble.
    const response = Buffer.concat([head, Buffer.from(user + "\0"), Buffer.from([0]), Buffer.from("mysql_native_password\0")]);
    let seq = greeting.seq + 1;
    io.write(mysqlPacket(seq, response));
    for (let round = 0; round < 4; round++) {
      const reply = await readPacket();
      seq = reply.seq + 1;
      const kind = reply.payload[0];
      if (kind === 0x00) {
        io.write(mysqlPacket(0, Buffer.from([0x01]))); // COM_QUIT
        return { attempt, outcome: "accepted", detail: "the server answered OK" };
      }
      if (kind === 0xff) return { attempt, outcome: "refused", detail: mysqlError(reply.payload) };
      // 0xfe: the account uses another plugin; its empty-password answer is empty too. 0x01: more auth data.
      if (kind === 0xfe) io.write(mysqlPacket(seq, Buffer.alloc(0)));
      else if (kind !== 0x01) return { attempt, outcome: "unknown", detail: `unexpected packet 0x${kind?.toString(16)}` };
    }
    return { attempt, outcome: "unknown", detail: "the authentication did not end" };
  });
}

function mysqlPacket(seq: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUIntLE(payload.length, 0, 3);
  head.writeUInt8(seq & 0xff, 3);
  return Buffer.concat([head, payload]);
}

function mysqlError(payload: Buffer): string {
  const code = payload.readUInt16LE(1);
  const text = payload.subarray(payload[3] === 0x23 ? 9 : 3).toString();
  return `error ${code}: ${text}`;
}

/** root and an anonymous user (an anonymous account matches any user name) with an empty password. */
export async function assertNoPasswordlessMysql(opts: CheckOptions & { host?: string; port: number; logFile?: string }): Promise<void> {
  const host = opts.host ?? "127.0.0.1";
  const attempts = await Promise.all(["root", ""].map((user) => tryMysqlLogin(host, opts.port, user, opts.timeoutMs)));
  await refuseUnlessAllRefused(
    `the MariaDB server on ${host}:${opts.port}`,
    attempts,
    "Drop those accounts or give them a password (DROP USER 'root'@'127.0.0.1'; DROP USER ''@'%'); startMysql does this at every start, so look for errors of its init file" +
      (opts.logFile ? ` in ${opts.logFile}.` : "."),
    opts.stop,
  );
}

// ---- PostgreSQL -----------------------------------------------------------------------------------

/** A startup message as `user` and no password: AuthenticationOk means the server let it in. */
export async function tryPostgresLogin(target: { host: string; port: number } | { path: string }, user = "postgres", timeoutMs = DEFAULT_TIMEOUT_MS): Promise<LoginAttempt> {
  const via = "path" in target ? `the socket ${target.path}` : `TCP ${target.host}:${target.port}`;
  const attempt = `'${user}' without a password over ${via}${"path" in target && process.getuid ? ` (as uid ${process.getuid()})` : ""}`;
  return attemptLogin(target, timeoutMs, attempt, async (io) => {
    const params = Buffer.from(`user\0${user}\0database\0postgres\0\0`);
    const head = Buffer.alloc(8);
    head.writeInt32BE(8 + params.length, 0);
    head.writeInt32BE(196608, 4); // protocol 3.0
    io.write(Buffer.concat([head, params]));
    for (;;) {
      const type = String.fromCharCode((await io.bytes(1))[0]!);
      const body = await io.bytes((await io.bytes(4)).readInt32BE(0) - 4);
      if (type === "R") {
        const code = body.readInt32BE(0);
        if (code === 0) {
          io.write(Buffer.from([0x58, 0, 0, 0, 4])); // Terminate
          return { attempt, outcome: "accepted", detail: "AuthenticationOk without a password (trust)" };
        }
        const asked = code === 10 ? "SCRAM" : code === 5 ? "MD5" : code === 3 ? "a cleartext password" : `method ${code}`;
        return { attempt, outcome: "refused", detail: `the server asks for ${asked}` };
      }
      // Class 28 (invalid authorization: no pg_hba.conf line, peer failed …) refuses the login; others
      // (starting up, too many connections) say nothing about credentials.
      if (type === "E") return { attempt, outcome: postgresField(body, "C").startsWith("28") ? "refused" : "unknown", detail: postgresField(body, "M") };
      if (type !== "N") return { attempt, outcome: "unknown", detail: `unexpected message '${type}'` };
    }
  });
}

/** One field of an ErrorResponse: C is the SQLSTATE, M the message. */
function postgresField(body: Buffer, code: string): string {
  for (const field of body.toString().split("\0")) if (field.startsWith(code)) return field.slice(1);
  return "";
}

/**
 * `postgres` over TCP, and over the socket in `socketDir` as this process's uid (root, when skiff runs as
 * root: not the postgres user, so only trust would let it in).
 */
export async function assertNoPasswordlessPostgres(opts: CheckOptions & { host?: string; port: number; socketDir?: string; hbaFile?: string }): Promise<void> {
  const host = opts.host ?? "127.0.0.1";
  const targets: ({ host: string; port: number } | { path: string })[] = [{ host, port: opts.port }];
  if (opts.socketDir) targets.push({ path: `${opts.socketDir}/.s.PGSQL.${opts.port}` });
  const attempts = await Promise.all(targets.map((t) => tryPostgresLogin(t, "postgres", opts.timeoutMs)));
  await refuseUnlessAllRefused(
    `the PostgreSQL server on ${host}:${opts.port}`,
    attempts,
    `Replace every 'trust' method in ${opts.hbaFile ?? "pg_hba.conf"} with scram-sha-256 (or peer, for local lines).`,
    opts.stop,
  );
}

// ---- Redis ----------------------------------------------------------------------------------------

/** PING without AUTH (must answer NOAUTH), then AUTH as `default` with an empty password (must fail). */
export async function tryRedisLogins(host: string, port: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<LoginAttempt[]> {
  const ping = `a client without AUTH over TCP ${host}:${port}`;
  const empty = `'default' with an empty password over TCP ${host}:${port}`;
  const answer = (attempt: string, line: string): LoginAttempt =>
    line.startsWith("+") ? { attempt, outcome: "accepted", detail: `the server answered ${line}` } : { attempt, outcome: "refused", detail: line };
  const ask = (attempt: string, command: string) =>
    attemptLogin({ host, port }, timeoutMs, attempt, async (io) => {
      io.write(command);
      return answer(attempt, await io.line());
    });
  // AUTH in RESP form: an empty argument cannot be written inline.
  return Promise.all([ask(ping, "PING\r\n"), ask(empty, "*3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$0\r\n\r\n")]);
}

export async function assertNoPasswordlessRedis(opts: CheckOptions & { host?: string; port: number; aclFile?: string }): Promise<void> {
  const host = opts.host ?? "127.0.0.1";
  await refuseUnlessAllRefused(
    `the Redis server on ${host}:${opts.port}`,
    await tryRedisLogins(host, opts.port, opts.timeoutMs),
    `Give the default user a password (in ${opts.aclFile ?? "the ACL file"}: user default on >PASSWORD ~* &* +@all; never nopass).`,
    opts.stop,
  );
}

/** The empty password's SHA-256, as ACL LIST shows a user whose password is "". */
const EMPTY_PASSWORD_HASH = "#e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/**
 * The users in an `ACL LIST` reply that are enabled and log in without a password: `nopass`, or a
 * password that is the empty string.
 */
export function aclUsersWithoutPassword(aclList: readonly string[]): string[] {
  const open: string[] = [];
  for (const line of aclList) {
    const [word, name, ...rules] = line.split(" ");
    if (word !== "user" || !name) continue;
    if (rules.includes("on") && (rules.includes("nopass") || rules.includes(EMPTY_PASSWORD_HASH))) open.push(name);
  }
  return open;
}

// ---- RabbitMQ -------------------------------------------------------------------------------------

/** AMQP 0-9-1 up to the server's answer to Start-Ok (PLAIN): Tune means the login was accepted. */
export async function tryAmqpLogin(host: string, port: number, user: string, password: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<LoginAttempt> {
  const attempt = `${user ? `'${user}'/'${password}'` : "an empty user and password"} over AMQP ${host}:${port}`;
  return attemptLogin({ host, port }, timeoutMs, attempt, async (io) => {
    const readMethod = async () => {
      for (;;) {
        const head = await io.bytes(7);
        const body = await io.bytes(head.readUInt32BE(3) + 1); // payload + frame end
        if (head[0] === 1) return { method: body.readUInt16BE(0) * 65536 + body.readUInt16BE(2), args: body.subarray(4, -1) };
      }
    };
    io.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
    const start = await readMethod();
    if (start.method !== 10 * 65536 + 10) return { attempt, outcome: "unknown", detail: `expected Connection.Start, got method ${start.method}` };
    const shortstr = (s: string) => Buffer.concat([Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)]);
    const credentials = Buffer.from(`\0${user}\0${password}`);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(credentials.length);
    // Connection.Start-Ok (class 10, method 11): client properties, mechanism, response, locale.
    const payload = Buffer.concat([Buffer.from([0, 10, 0, 11]), AMQP_CLIENT_PROPERTIES, shortstr("PLAIN"), length, credentials, shortstr("en_US")]);
    const frame = Buffer.alloc(7);
    frame.writeUInt8(1, 0); // a method frame on channel 0
    frame.writeUInt32BE(payload.length, 3);
    io.write(Buffer.concat([frame, payload, Buffer.from([0xce])]));
    try {
      const next = await readMethod();
      if (next.method === 10 * 65536 + 30) return { attempt, outcome: "accepted", detail: "the server sent Connection.Tune" };
      if (next.method === 10 * 65536 + 50) return { attempt, outcome: "refused", detail: `${next.args.readUInt16BE(0)} ${next.args.subarray(3, 3 + next.args[2]!).toString()}` };
      return { attempt, outcome: "unknown", detail: `unexpected method ${next.method}` };
    } catch (err) {
      // RabbitMQ answers a failed login by closing (or resetting) the socket: the client did not ask for a Close.
      if (closedByServer(err)) return { attempt, outcome: "refused", detail: (err as Error).message };
      throw err;
    }
  });
}

/**
 * {capabilities: {authentication_failure_close: true}}: the broker then refuses a login with a
 * Connection.Close (403 ACCESS_REFUSED) at once, instead of closing the socket silently after 3 s.
 */
const AMQP_CLIENT_PROPERTIES = (() => {
  const field = (name: string, type: string, value: Buffer) => Buffer.concat([Buffer.from([name.length]), Buffer.from(name + type), value]);
  const table = (fields: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(fields.length);
    return Buffer.concat([length, fields]);
  };
  return table(field("capabilities", "F", table(field("authentication_failure_close", "t", Buffer.from([1])))));
})();

export async function tryHttpBasicLogin(url: string, user: string | undefined, password: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<LoginAttempt> {
  const attempt = `${user === undefined ? "no credentials" : `'${user}'/'${password}'`} on ${url}`;
  try {
    const headers: Record<string, string> = user === undefined ? {} : { authorization: `Basic ${btoa(`${user}:${password}`)}` };
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    if (res.status === 401 || res.status === 403) return { attempt, outcome: "refused", detail: `HTTP ${res.status}` };
    if (res.ok) return { attempt, outcome: "accepted", detail: `HTTP ${res.status}` };
    return { attempt, outcome: "unknown", detail: `HTTP ${res.status}` };
  } catch (err) {
    return { attempt, outcome: "unknown", detail: (err as Error).message };
  }
}

/** guest/guest and an empty login on the management API and on AMQP. */
export async function assertNoPasswordlessRabbitmq(opts: CheckOptions & { host?: string; port: number; managementPort: number }): Promise<void> {
  const host = opts.host ?? "127.0.0.1";
  const whoami = `http://${host}:${opts.managementPort}/api/whoami`;
  const attempts = await Promise.all([
    tryHttpBasicLogin(whoami, undefined, "", opts.timeoutMs),
    tryHttpBasicLogin(whoami, "guest", "guest", opts.timeoutMs),
    tryAmqpLogin(host, opts.port, "guest", "guest", opts.timeoutMs),
    tryAmqpLogin(host, opts.port, "", "", opts.timeoutMs),
  ]);
  await refuseUnlessAllRefused(
    `the RabbitMQ node on ${host}:${opts.port}`,
    attempts,
    "Delete the guest user (rabbitmqctl delete_user guest, or DELETE /api/users/guest); startRabbitmq does this at every start.",
    opts.stop,
  );
}

// ---- NATS -----------------------------------------------------------------------------------------

/** CONNECT with no user, then PING: PONG means the server let the client in. */
export async function tryNatsLogin(host: string, port: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<LoginAttempt> {
  const attempt = `a client without user or token over TCP ${host}:${port}`;
  return attemptLogin({ host, port }, timeoutMs, attempt, async (io) => {
    const info = await io.line();
    if (!info.startsWith("INFO ")) return { attempt, outcome: "unknown", detail: `expected INFO, got ${info.slice(0, 60)}` };
    if (/"tls_required"\s*:\s*true/.test(info)) return { attempt, outcome: "unknown", detail: "the server requires TLS, which this check does not speak" };
    io.write(`CONNECT {"verbose":false,"pedantic":false,"protocol":1,"lang":"skiff-check","version":"1"}\r\nPING\r\n`);
    try {
      for (;;) {
        const line = await io.line();
        if (line === "PONG") return { attempt, outcome: "accepted", detail: "the server answered PONG" };
        if (line.startsWith("-ERR")) return { attempt, outcome: "refused", detail: line };
        // INFO updates and +OK are neither.
      }
    } catch (err) {
      if (closedByServer(err)) return { attempt, outcome: "refused", detail: (err as Error).message };
      throw err;
    }
  });
}

/** For a `nats://[user:pass@]host:port` URL; its credentials, if any, are not used. */
export async function assertNoPasswordlessNats(opts: CheckOptions & { url: string; configFile?: string }): Promise<void> {
  const u = new URL(opts.url);
  const host = u.hostname.replace(/^\[|\]$/g, "");
  const port = Number(u.port || 4222);
  await refuseUnlessAllRefused(
    `the nats-server on ${host}:${port}`,
    [await tryNatsLogin(host, port, opts.timeoutMs)],
    `Give it an authorization block with users and passwords${opts.configFile ? ` in ${opts.configFile}` : ""}, and no no_auth_user.`,
    opts.stop,
  );
}

/**
 * One login attempt on one connection. A connection that fails, times out or ends before `talk` has its
 * answer is "unknown", except a socket we may not open at all: that refuses everyone.
 */
async function attemptLogin(target: SocketTarget, timeoutMs: number, attempt: string, talk: (io: Io) => Promise<LoginAttempt>): Promise<LoginAttempt> {
  try {
    return await converse(target, timeoutMs, talk);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "EACCES") return { attempt, outcome: "refused", detail: `cannot open the socket: ${e.message}` };
    return { attempt, outcome: "unknown", detail: e instanceof ConnectError ? `cannot connect: ${e.message}` : e.message };
  }
}
