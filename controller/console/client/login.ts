// The login form: POST /v3/tokens (the API's own login, its lockout and per-address rate limit), then
// hand the token to /console/session, which keeps it in an HttpOnly cookie. The bearer header is what
// makes that second call impossible for another site to forge (a cross-site request cannot send one).

export function startLogin(): void {
  const form = document.getElementById("login") as HTMLFormElement | null;
  if (!form) return;
  const error = document.getElementById("login-error")!;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const data = new FormData(form);
    const button = form.querySelector("button")!;
    button.disabled = true;
    try {
      const res = await fetch("/v3/tokens", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ username: data.get("username"), password: data.get("password") }),
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) {
        error.textContent = body?.errors?.[0]?.detail ?? `Login failed (${res.status}).`;
        return;
      }
      const session = await fetch("/console/session", { method: "POST", headers: { authorization: `bearer ${body.access_token}` } });
      if (!session.ok) {
        error.textContent = `The console could not start a session (${session.status}).`;
        return;
      }
      const next = new URLSearchParams(location.search).get("next");
      location.assign(next && next.startsWith("/console/") ? next : "/console/");
    } catch {
      error.textContent = "The controller did not answer.";
    } finally {
      button.disabled = false;
    }
  });
}
