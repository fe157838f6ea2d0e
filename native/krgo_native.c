// System calls Node does not expose, for exact layer application:
// utimensat with nanoseconds and no symlink following, mknod, and the l*xattr family.
// Each call is a single synchronous syscall; errors are thrown with err.code = errno name.
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define PATH_BUF 4096
#define NAME_BUF 256

static napi_value throw_errno(napi_env env, int err, const char *what) {
  const char *name = strerrorname_np(err);
  char message[512];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_throw_error(env, name ? name : "EUNKNOWN", message);
  return NULL;
}

/* A path or name: a string (UTF-8), or a Buffer holding the exact bytes of a name that is not
 * UTF-8 (see src/tar/name-bytes.ts). NUL bytes and overlong values are refused. */
static int get_string(napi_env env, napi_value value, char *buf, size_t size) {
  bool is_buffer = false;
  if (napi_is_buffer(env, value, &is_buffer) == napi_ok && is_buffer) {
    void *data = NULL;
    size_t len = 0;
    if (napi_get_buffer_info(env, value, &data, &len) != napi_ok || len + 1 >= size) return -1;
    if (memchr(data, 0, len) != NULL) return -1;
    memcpy(buf, data, len);
    buf[len] = 0;
    return 0;
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, value, buf, size, &len) != napi_ok) return -1;
  return len + 1 >= size ? -1 : 0;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "missing arguments");
    return -1;
  }
  return 0;
}

// lutimesNs(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec)
static napi_value lutimes_ns(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  char path[PATH_BUF];
  if (get_args(env, info, 5, argv) || get_string(env, argv[0], path, sizeof path)) return NULL;
  int64_t v[4];
  for (int i = 0; i < 4; i++) napi_get_value_int64(env, argv[i + 1], &v[i]);
  struct timespec ts[2] = {{.tv_sec = v[0], .tv_nsec = v[1]}, {.tv_sec = v[2], .tv_nsec = v[3]}};
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) != 0) return throw_errno(env, errno, "utimensat");
  return NULL;
}

// mknod(path, mode, major, minor): mode carries the file type bits (S_IFCHR, S_IFBLK, S_IFIFO).
static napi_value do_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  char path[PATH_BUF];
  if (get_args(env, info, 4, argv) || get_string(env, argv[0], path, sizeof path)) return NULL;
  uint32_t mode, major_n, minor_n;
  napi_get_value_uint32(env, argv[1], &mode);
  napi_get_value_uint32(env, argv[2], &major_n);
  napi_get_value_uint32(env, argv[3], &minor_n);
  if (mknod(path, mode, makedev(major_n, minor_n)) != 0) return throw_errno(env, errno, "mknod");
  return NULL;
}

// lremovexattr(path, name): for restoring a branch whose record lacks an xattr the file has
static napi_value do_lremovexattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[PATH_BUF], name[NAME_BUF];
  if (get_args(env, info, 2, argv) || get_string(env, argv[0], path, sizeof path) || get_string(env, argv[1], name, sizeof name)) return NULL;
  if (lremovexattr(path, name) != 0) return throw_errno(env, errno, "lremovexattr");
  return NULL;
}

// lsetxattr(path, name, buffer)
static napi_value do_lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char path[PATH_BUF], name[NAME_BUF];
  if (get_args(env, info, 3, argv) || get_string(env, argv[0], path, sizeof path) || get_string(env, argv[1], name, sizeof name)) return NULL;
  void *data = NULL;
  size_t len = 0;
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "value must be a Buffer");
    return NULL;
  }
  if (lsetxattr(path, name, data, len, 0) != 0) return throw_errno(env, errno, "lsetxattr");
  return NULL;
}

// llistxattr(path) -> string[]
static napi_value do_llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  char path[PATH_BUF];
  if (get_args(env, info, 1, argv) || get_string(env, argv[0], path, sizeof path)) return NULL;
  ssize_t size = llistxattr(path, NULL, 0);
  if (size < 0) return throw_errno(env, errno, "llistxattr");
  char *names = malloc(size > 0 ? size : 1);
  size = llistxattr(path, names, size);
  if (size < 0) {
    int err = errno;
    free(names);
    return throw_errno(env, err, "llistxattr");
  }
  napi_create_array(env, &result);
  uint32_t index = 0;
  for (ssize_t pos = 0; pos < size; pos += strlen(names + pos) + 1) {
    napi_value name;
    napi_create_string_utf8(env, names + pos, NAPI_AUTO_LENGTH, &name);
    napi_set_element(env, result, index++, name);
  }
  free(names);
  return result;
}

// lgetxattr(path, name) -> Buffer
static napi_value do_lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  char path[PATH_BUF], name[NAME_BUF];
  if (get_args(env, info, 2, argv) || get_string(env, argv[0], path, sizeof path) || get_string(env, argv[1], name, sizeof name)) return NULL;
  ssize_t size = lgetxattr(path, name, NULL, 0);
  if (size < 0) return throw_errno(env, errno, "lgetxattr");
  void *data = NULL;
  napi_create_buffer(env, size, &data, &result);
  if (size > 0 && lgetxattr(path, name, data, size) < 0) return throw_errno(env, errno, "lgetxattr");
  return result;
}

napi_value gzip_index_init(napi_env env, napi_value exports);

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"lutimesNs", NULL, lutimes_ns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mknod", NULL, do_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lsetxattr", NULL, do_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lremovexattr", NULL, do_lremovexattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"llistxattr", NULL, do_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lgetxattr", NULL, do_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return gzip_index_init(env, exports);
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
