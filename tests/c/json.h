/* A small JSON reader for the C tests (replaying the shared vectors in tests/vectors): enough of RFC 8259
 * for the vectors -- objects, arrays, strings with escapes (\uXXXX and surrogate pairs to
 * UTF-8), numbers, true/false/null. Header-only; compiles as C11 and C++17. */
#ifndef KEYWARD_TEST_JSON_H
#define KEYWARD_TEST_JSON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval {
  jtype type;
  double num;       /* J_NUM, J_BOOL */
  char *str;        /* J_STR (NUL-terminated, may contain no NUL) */
  size_t len;       /* J_STR length; J_ARR/J_OBJ item count */
  struct jval *items; /* J_ARR / J_OBJ values */
  char **keys;      /* J_OBJ keys */
} jval;

typedef struct { const char *p; const char *end; int err; } jparser;

static void j_ws(jparser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t')) ps->p++;
}

static int j_parse(jparser *ps, jval *out);

static void j_put_utf8(char *buf, size_t *n, unsigned long cp) {
  if (cp < 0x80) { buf[(*n)++] = (char)cp; }
  else if (cp < 0x800) { buf[(*n)++] = (char)(0xC0 | (cp >> 6)); buf[(*n)++] = (char)(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) {
    buf[(*n)++] = (char)(0xE0 | (cp >> 12)); buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
    buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
  } else {
    buf[(*n)++] = (char)(0xF0 | (cp >> 18)); buf[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
    buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F)); buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
  }
}

static unsigned long j_hex4(jparser *ps) {
  unsigned long v = 0;
  int i;
  if (ps->end - ps->p < 4) { ps->err = 1; return 0; }
  for (i = 0; i < 4; i++) {
    char c = *ps->p++;
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned long)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned long)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned long)(c - 'A' + 10);
    else ps->err = 1;
  }
  return v;
}

static char *j_string(jparser *ps, size_t *len) {
  size_t cap = (size_t)(ps->end - ps->p) + 1, n = 0;
  char *buf = (char *)malloc(cap);
  ps->p++; /* opening quote */
  while (ps->p < ps->end && *ps->p != '"') {
    char c = *ps->p++;
    if (c != '\\') { buf[n++] = c; continue; }
    if (ps->p >= ps->end) break;
    c = *ps->p++;
    switch (c) {
      case 'n': buf[n++] = '\n'; break;
      case 't': buf[n++] = '\t'; break;
      case 'r': buf[n++] = '\r'; break;
      case 'b': buf[n++] = '\b'; break;
      case 'f': buf[n++] = '\f'; break;
      case 'u': {
        unsigned long cp = j_hex4(ps);
        if (cp >= 0xD800 && cp < 0xDC00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
          unsigned long lo;
          ps->p += 2;
          lo = j_hex4(ps);
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        j_put_utf8(buf, &n, cp);
        break;
      }
      default: buf[n++] = c; break;
    }
  }
  if (ps->p >= ps->end) ps->err = 1; else ps->p++;
  buf[n] = 0;
  *len = n;
  return buf;
}

static int j_parse(jparser *ps, jval *out) {
  memset(out, 0, sizeof *out);
  j_ws(ps);
  if (ps->p >= ps->end) return ps->err = 1, 0;
  if (*ps->p == '{' || *ps->p == '[') {
    int obj = *ps->p == '{';
    size_t cap = 8;
    out->type = obj ? J_OBJ : J_ARR;
    out->items = (jval *)malloc(cap * sizeof(jval));
    out->keys = obj ? (char **)malloc(cap * sizeof(char *)) : NULL;
    ps->p++;
    j_ws(ps);
    if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) { ps->p++; return 1; }
    for (;;) {
      if (out->len == cap) {
        cap *= 2;
        out->items = (jval *)realloc(out->items, cap * sizeof(jval));
        if (obj) out->keys = (char **)realloc(out->keys, cap * sizeof(char *));
      }
      if (obj) {
        size_t klen;
        j_ws(ps);
        if (ps->p >= ps->end || *ps->p != '"') return ps->err = 1, 0;
        out->keys[out->len] = j_string(ps, &klen);
        j_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') return ps->err = 1, 0;
        ps->p++;
      }
      if (!j_parse(ps, &out->items[out->len])) { out->len++; return 0; }
      out->len++;
      j_ws(ps);
      if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
      if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) { ps->p++; return 1; }
      return ps->err = 1, 0;
    }
  }
  if (*ps->p == '"') { out->type = J_STR; out->str = j_string(ps, &out->len); return !ps->err; }
  if (ps->end - ps->p >= 4 && strncmp(ps->p, "true", 4) == 0) { out->type = J_BOOL; out->num = 1; ps->p += 4; return 1; }
  if (ps->end - ps->p >= 5 && strncmp(ps->p, "false", 5) == 0) { out->type = J_BOOL; ps->p += 5; return 1; }
  if (ps->end - ps->p >= 4 && strncmp(ps->p, "null", 4) == 0) { out->type = J_NULL; ps->p += 4; return 1; }
  {
    char tmp[64];
    size_t n = 0;
    while (ps->p < ps->end && n < sizeof tmp - 1 && strchr("+-0123456789.eE", *ps->p) && *ps->p) tmp[n++] = *ps->p++;
    tmp[n] = 0;
    if (n == 0) return ps->err = 1, 0;
    out->type = J_NUM;
    out->num = strtod(tmp, NULL);
    return 1;
  }
}

/* Parses `len` bytes; returns 1 on success. */
static int json_parse(const char *text, size_t len, jval *out) {
  jparser ps;
  ps.p = text; ps.end = text + len; ps.err = 0;
  return j_parse(&ps, out) && !ps.err;
}

static void json_free(jval *v) {
  size_t i;
  if (v->type == J_STR) free(v->str);
  if (v->type == J_ARR || v->type == J_OBJ) {
    for (i = 0; i < v->len; i++) {
      json_free(&v->items[i]);
      if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
  }
}

/* The member `key` of an object, or NULL. */
static const jval *json_get(const jval *obj, const char *key) {
  size_t i;
  if (!obj || obj->type != J_OBJ) return NULL;
  for (i = 0; i < obj->len; i++)
    if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
  return NULL;
}

static const char *json_str(const jval *obj, const char *key) {
  const jval *v = json_get(obj, key);
  return v && v->type == J_STR ? v->str : NULL;
}

static double json_num(const jval *obj, const char *key, double fallback) {
  const jval *v = json_get(obj, key);
  return v && (v->type == J_NUM || v->type == J_BOOL) ? v->num : fallback;
}

/* Reads a whole file into a malloc'd buffer (NUL-terminated). */
static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = (char *)malloc((size_t)n + 1);
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) { fclose(f); free(buf); return NULL; }
  fclose(f);
  buf[n] = 0;
  *len = (size_t)n;
  return buf;
}

#endif
