// Random access into gzip streams, after zlib's examples/zran.c: one streaming pass records
// checkpoints at deflate block boundaries (compressed offset, bit offset, uncompressed offset,
// the 32 KiB window); a read resumes raw inflation at the nearest checkpoint.
// Linked against the zlib Node itself exports (no extra library).
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define WINSIZE 32768

typedef struct {
  uint64_t in;   // compressed offset of the first full byte after the checkpoint
  int bits;      // bits of the byte before `in` that belong to the next block (0-7)
  uint64_t out;  // uncompressed offset
  int keyed;     // whether the window was kept (see window_spacing)
  unsigned window_len;
  unsigned char window[WINSIZE];
} point_t;

typedef struct {
  z_stream strm;
  unsigned char *input;   // unconsumed input
  size_t input_len;
  uint64_t total_in, total_out, last_point_out, span;
  // Only points at least window_spacing after the last keyed one keep their window: the
  // others are places to stop, or to resume from cached output (copying 32 KiB each for
  // nothing cost time and memory).
  uint64_t window_spacing, last_keyed_out;
  int any_keyed;
  int member_end;  // a member ended; waiting to see whether another follows
  int done;
  point_t *points;
  size_t npoints, cap_points;
} indexer_t;

static napi_value throw_gzip(napi_env env, const char *msg) {
  napi_throw_error(env, "EGZIP", msg ? msg : "invalid gzip data");
  return NULL;
}

static void indexer_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  indexer_t *ix = data;
  inflateEnd(&ix->strm);
  free(ix->input);
  free(ix->points);
  free(ix);
}

static indexer_t *get_indexer(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok) napi_throw_type_error(env, NULL, "not a gzip indexer");
  return data;
}

// gzipIndexerCreate(spanBytes, windowSpacingBytes)
static napi_value indexer_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t span = 0, spacing = 0;
  napi_get_value_int64(env, argv[0], &span);
  if (argc >= 2) napi_get_value_int64(env, argv[1], &spacing);
  indexer_t *ix = calloc(1, sizeof *ix);
  ix->span = span > 0 ? (uint64_t)span : 1 << 20;
  ix->window_spacing = spacing > 0 ? (uint64_t)spacing : ix->span;
  if (inflateInit2(&ix->strm, 31) != Z_OK) {
    free(ix);
    return throw_gzip(env, "inflateInit2 failed");
  }
  napi_create_external(env, ix, indexer_free, NULL, &result);
  return result;
}

// gzipIndexerPush(ix, chunk): appends compressed input.
static napi_value indexer_push(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  indexer_t *ix = get_indexer(env, argv[0]);
  if (!ix) return NULL;
  void *data;
  size_t len;
  napi_get_buffer_info(env, argv[1], &data, &len);
  ix->input = realloc(ix->input, ix->input_len + len + 1);
  memcpy(ix->input + ix->input_len, data, len);
  ix->input_len += len;
  return NULL;
}

static void add_point(indexer_t *ix) {
  if (ix->npoints == ix->cap_points) {
    ix->cap_points = ix->cap_points ? ix->cap_points * 2 : 16;
    ix->points = realloc(ix->points, ix->cap_points * sizeof(point_t));
  }
  point_t *p = &ix->points[ix->npoints++];
  p->in = ix->total_in;
  p->bits = ix->strm.data_type & 7;
  p->out = ix->total_out;
  p->window_len = 0;
  p->keyed = !ix->any_keyed || ix->total_out - ix->last_keyed_out >= ix->window_spacing;
  if (p->keyed) {
    inflateGetDictionary(&ix->strm, p->window, &p->window_len);
    ix->last_keyed_out = ix->total_out;
    ix->any_keyed = 1;
  }
  ix->last_point_out = ix->total_out;
}

// gzipIndexerPull(ix, maxOut) -> Buffer: up to maxOut uncompressed bytes; empty when it needs input.
static napi_value indexer_pull(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  indexer_t *ix = get_indexer(env, argv[0]);
  if (!ix) return NULL;
  int64_t max_out = 0;
  napi_get_value_int64(env, argv[1], &max_out);
  if (max_out <= 0) max_out = 1 << 20;
  unsigned char *out = malloc(max_out);
  size_t produced = 0, consumed = 0;
  while (!ix->done && produced < (size_t)max_out) {
    size_t avail = ix->input_len - consumed;
    if (ix->member_end) {
      if (avail == 0) break;  // does another member follow? wait for input to tell
      if (ix->input[consumed] != 0x1f) {  // trailing padding: the stream is over
        ix->total_in += avail;
        consumed += avail;
        ix->done = 1;
        break;
      }
      inflateReset2(&ix->strm, 31);
      ix->member_end = 0;
    }
    if (avail == 0) break;
    ix->strm.next_in = ix->input + consumed;
    ix->strm.avail_in = avail;
    ix->strm.next_out = out + produced;
    ix->strm.avail_out = max_out - produced;
    int ret = inflate(&ix->strm, Z_BLOCK);
    size_t in_used = avail - ix->strm.avail_in;
    size_t out_made = (max_out - produced) - ix->strm.avail_out;
    consumed += in_used;
    produced += out_made;
    ix->total_in += in_used;
    ix->total_out += out_made;
    if (ret == Z_NEED_DICT || ret == Z_DATA_ERROR || ret == Z_MEM_ERROR) {
      free(out);
      return throw_gzip(env, ix->strm.msg);
    }
    if (ret == Z_STREAM_END) {
      ix->member_end = 1;
      continue;
    }
    if ((ix->strm.data_type & 128) && !(ix->strm.data_type & 64) && (ix->total_out == 0 || ix->total_out - ix->last_point_out >= ix->span)) add_point(ix);
    if (ret == Z_BUF_ERROR && in_used == 0 && out_made == 0) break;
  }
  memmove(ix->input, ix->input + consumed, ix->input_len - consumed);
  ix->input_len -= consumed;
  napi_create_buffer_copy(env, produced, out, NULL, &result);
  free(out);
  return result;
}

static void set_number(napi_env env, napi_value obj, const char *key, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  napi_set_named_property(env, obj, key, n);
}

// gzipIndexerTakePoints(ix) -> [{in, bits, out, window?}], the checkpoints found since the last call (window only on keyed ones).
static napi_value indexer_take_points(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  indexer_t *ix = get_indexer(env, argv[0]);
  if (!ix) return NULL;
  napi_create_array_with_length(env, ix->npoints, &result);
  for (size_t i = 0; i < ix->npoints; i++) {
    napi_value obj, window;
    napi_create_object(env, &obj);
    set_number(env, obj, "in", (double)ix->points[i].in);
    set_number(env, obj, "bits", ix->points[i].bits);
    set_number(env, obj, "out", (double)ix->points[i].out);
    if (ix->points[i].keyed) {
      napi_create_buffer_copy(env, ix->points[i].window_len, ix->points[i].window, NULL, &window);
      napi_set_named_property(env, obj, "window", window);
    }
    napi_set_element(env, result, i, obj);
  }
  ix->npoints = 0;
  return result;
}

// gzipIndexerState(ix) -> {totalIn, totalOut, atEnd}: atEnd when the last member is complete.
static napi_value indexer_state(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, flag;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  indexer_t *ix = get_indexer(env, argv[0]);
  if (!ix) return NULL;
  napi_create_object(env, &result);
  set_number(env, result, "totalIn", (double)ix->total_in);
  set_number(env, result, "totalOut", (double)ix->total_out);
  napi_get_boolean(env, ix->done || (ix->member_end && ix->input_len == 0), &flag);
  napi_set_named_property(env, result, "atEnd", flag);
  return result;
}

// Inflates from a checkpoint: `data` starts at the checkpoint's byte (in - 1 when bits > 0);
// writes uncompressed bytes [skip, skip + length) after the checkpoint to `out` and returns how
// many it wrote (fewer when the input ends first), or -1 with `*msg` set. No N-API calls: it also
// runs on a worker thread (gzipExtractAsync).
static int64_t inflate_range(const unsigned char *data, size_t data_len, int bits, const unsigned char *window, size_t window_len, int64_t skip,
                             int64_t length, unsigned char *out, const char **msg) {
  z_stream strm;
  memset(&strm, 0, sizeof strm);
  *msg = NULL;
  if (inflateInit2(&strm, -15) != Z_OK) {
    *msg = "inflateInit2 failed";
    return -1;
  }
  size_t pos = 0;
  if (bits) {
    inflatePrime(&strm, bits, data[0] >> (8 - bits));
    pos = 1;
  }
  if (window_len) inflateSetDictionary(&strm, window, window_len);
  unsigned char discard[WINSIZE];
  int64_t skipped = 0, got = 0;
  int raw = 1;
  while (got < length) {
    strm.next_in = (unsigned char *)data + pos;
    strm.avail_in = data_len - pos;
    if (skipped < skip) {
      strm.next_out = discard;
      strm.avail_out = (skip - skipped) < WINSIZE ? (uInt)(skip - skipped) : WINSIZE;
    } else {
      strm.next_out = out + got;
      strm.avail_out = length - got;
    }
    uInt before_out = strm.avail_out, before_in = strm.avail_in;
    int ret = inflate(&strm, Z_NO_FLUSH);
    pos += before_in - strm.avail_in;
    uInt made = before_out - strm.avail_out;
    if (skipped < skip) skipped += made;
    else got += made;
    if (ret == Z_STREAM_END) {
      // Member end: a raw stream leaves the 8-byte trailer; the next member has a header.
      if (raw) pos += 8;
      raw = 0;
      if (pos >= data_len || data[pos] != 0x1f) break;
      inflateReset2(&strm, 31);
      continue;
    }
    if (ret == Z_NEED_DICT || ret == Z_DATA_ERROR || ret == Z_MEM_ERROR) {
      *msg = strm.msg ? strm.msg : "invalid gzip data";
      inflateEnd(&strm);
      return -1;
    }
    if (ret == Z_BUF_ERROR || (made == 0 && strm.avail_in == 0)) break;  // ran out of input
  }
  inflateEnd(&strm);
  return got;
}

typedef struct {
  unsigned char *data, *window;
  size_t data_len, window_len;
  int32_t bits;
  int64_t skip, length;
} extract_args_t;

// Reads (data, bits, window, skip, length) from argv; 0 and a pending exception when they are bad.
static int extract_args(napi_env env, napi_value *argv, extract_args_t *a) {
  napi_get_buffer_info(env, argv[0], (void **)&a->data, &a->data_len);
  napi_get_value_int32(env, argv[1], &a->bits);
  napi_get_buffer_info(env, argv[2], (void **)&a->window, &a->window_len);
  napi_get_value_int64(env, argv[3], &a->skip);
  napi_get_value_int64(env, argv[4], &a->length);
  if (a->bits < 0 || a->bits > 7 || a->skip < 0 || a->length < 0 || (a->bits && a->data_len == 0)) {
    throw_gzip(env, "bad extract arguments");
    return 0;
  }
  return 1;
}

// gzipExtract(data, bits, window, skip, length) -> Buffer of the uncompressed bytes
// [skip, skip + length) after the checkpoint (fewer when `data` ends first).
static napi_value gzip_extract(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  extract_args_t a;
  if (!extract_args(env, argv, &a)) return NULL;
  unsigned char *out = malloc(a.length > 0 ? a.length : 1);
  const char *msg;
  int64_t got = inflate_range(a.data, a.data_len, a.bits, a.window, a.window_len, a.skip, a.length, out, &msg);
  if (got < 0) {
    free(out);
    return throw_gzip(env, msg);
  }
  napi_create_buffer_copy(env, got, out, NULL, &result);
  free(out);
  return result;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  // The caller's buffers stay alive (and unmoved) while the worker thread reads them.
  napi_ref data_ref, window_ref;
  extract_args_t a;
  unsigned char *out;
  int64_t got;
  const char *msg;
} extract_job_t;

static void extract_execute(napi_env env, void *data) {
  (void)env;
  extract_job_t *job = data;
  job->got = inflate_range(job->a.data, job->a.data_len, job->a.bits, job->a.window, job->a.window_len, job->a.skip, job->a.length, job->out, &job->msg);
}

static void free_output(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static void extract_complete(napi_env env, napi_status status, void *data) {
  extract_job_t *job = data;
  napi_delete_reference(env, job->data_ref);
  napi_delete_reference(env, job->window_ref);
  napi_value value;
  if (status != napi_ok || job->got < 0) {
    napi_value code, message;
    napi_create_string_utf8(env, "EGZIP", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, job->msg ? job->msg : "gzip extraction was cancelled", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, code, message, &value);
    free(job->out);
    napi_reject_deferred(env, job->deferred, value);
  } else if (job->got == 0) {
    free(job->out);
    napi_create_buffer(env, 0, NULL, &value);
    napi_resolve_deferred(env, job->deferred, value);
  } else {
    // The output becomes the Buffer's memory, freed with it: no copy.
    if (napi_create_external_buffer(env, job->got, job->out, free_output, NULL, &value) != napi_ok) {
      // Runtimes that forbid external buffers get a copy.
      napi_create_buffer_copy(env, job->got, job->out, NULL, &value);
      free(job->out);
    }
    napi_resolve_deferred(env, job->deferred, value);
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

// gzipExtractAsync(data, bits, window, skip, length) -> Promise<Buffer>: gzipExtract inflating on
// a libuv worker thread, so the thread serving FUSE and the network does not.
static napi_value gzip_extract_async(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], promise, name;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  extract_args_t a;
  if (!extract_args(env, argv, &a)) return NULL;
  extract_job_t *job = calloc(1, sizeof *job);
  unsigned char *out = malloc(a.length > 0 ? a.length : 1);
  if (!job || !out) {
    free(job);
    free(out);
    return throw_gzip(env, "out of memory");
  }
  job->a = a;
  job->out = out;
  napi_create_reference(env, argv[0], 1, &job->data_ref);
  napi_create_reference(env, argv[2], 1, &job->window_ref);
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "krgo:gzipExtract", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, extract_execute, extract_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

napi_value gzip_index_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"gzipIndexerCreate", NULL, indexer_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gzipIndexerPush", NULL, indexer_push, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gzipIndexerPull", NULL, indexer_pull, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gzipIndexerTakePoints", NULL, indexer_take_points, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gzipIndexerState", NULL, indexer_state, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gzipExtract", NULL, gzip_extract, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gzipExtractAsync", NULL, gzip_extract_async, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
