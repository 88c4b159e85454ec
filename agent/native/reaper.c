// The two system calls the agent's sandbox reaper needs (agent/sandbox-reaper.ts), as a Node-API
// module: prctl(PR_SET_CHILD_SUBREAPER) and waitpid(pid, WNOHANG). bun:ffi would do, but it needs
// JavaScriptCore's JIT, and the agent runs without it by default (agent/runtime-env.ts); a Node-API
// module loads in the interpreter too. Built by scripts/setup.mjs (cc -shared) into
// agent/native/dist/reaper.node. The few Node-API declarations it uses are written out here, so the
// build needs no Node headers: they are resolved from the Bun (or Node) process that loads it.

#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/wait.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status;
typedef napi_value (*napi_callback)(napi_env, napi_callback_info);

napi_status napi_create_function(napi_env, const char *, size_t, napi_callback, void *, napi_value *);
napi_status napi_set_named_property(napi_env, napi_value, const char *, napi_value);
napi_status napi_get_cb_info(napi_env, napi_callback_info, size_t *, napi_value *, napi_value *, void **);
napi_status napi_get_value_int32(napi_env, napi_value, int32_t *);
napi_status napi_create_int32(napi_env, int32_t, napi_value *);

/** becomeSubreaper(): prctl's result, 0 when this process is now a child subreaper. */
static napi_value become_subreaper(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_int32(env, prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), &result);
  return result;
}

/** reap(pid): waitpid(pid, NULL, WNOHANG): the pid reaped, 0 if it still runs, -1 if it is no child. */
static napi_value reap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t pid = 0;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc < 1 || napi_get_value_int32(env, argv[0], &pid) != 0 || pid <= 0) {
    napi_create_int32(env, -1, &result); // only one given child, never "any child" (-1 or 0)
    return result;
  }
  napi_create_int32(env, waitpid(pid, NULL, WNOHANG), &result);
  return result;
}

static void export_function(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, (size_t)-1, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  export_function(env, exports, "becomeSubreaper", become_subreaper);
  export_function(env, exports, "reap", reap);
  return exports;
}
