/*
 * keyward._kw_fast: the middlewares' usual request, judged in C.
 *
 * WSGIMiddleware and ASGIMiddleware (keyward/middleware.py) spend most of a request's cost
 * in the interpreter: reading the credential header, calling the library through cffi,
 * building the Verdict, handing it on. For the usual request (one credential header,
 * `x-api-key` or `Authorization`, as the server hands it over), a Judge (one per middleware
 * and scope list its routes require) does all of it in one call: it reads the header from the WSGI environ or the ASGI
 * scope, calls kw_verify_headers_ex (the C ABI stays the binding's one way into
 * libkeyward), builds the Verdict, and for an accepted request without rate-limit fields
 * attaches it as the Python middleware would (`keyward.verdict` / `keyward` + `state`, and
 * the `Verified` for middlewares stacked inside).
 *
 * A request with no credential header is answered too (the library's CREDENTIAL_MISSING).
 * Every other request is left to the Python code, before anything is verified (the call
 * answers None): several or unusual credential headers, values that are not plain ASCII
 * `str` (WSGI) or `bytes` pairs (ASGI), a request an outer middleware already verified.
 * A verified request that is refused, or accepted with rate-limit fields to send, comes back
 * as its Verdict for the Python code to answer. So behaviour is the Python path's; only the
 * cost differs (tests/test_middleware_fast.py compares the two).
 *
 * WSGIMiddleware derives from Gate: a call of the middleware with the usual request is judged
 * and handed to the application here, without a Python frame of the middleware's own; any
 * other goes to the middleware's `_serve` with what the judge returned or raised.
 *
 * Like keyward._kw_api this module is not linked against a libkeyward: keyward/_ffi.py opens
 * the library it chose with RTLD_GLOBAL and checks its ABI version before importing it.
 * Built by build_api.py (`python3 build_api.py OUTDIR`).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h> /* PyMember_SetOne, T_OBJECT_EX (Python.h from 3.12: Py_T_OBJECT_EX) */
#define Py_T_OBJECT_EX T_OBJECT_EX
#endif

#include "keyward.h"

/* Interned attribute and key names, made once at import. */
static PyObject *s_handle, *s_data, *s_reason, *s_http_status, *s_ok;
static PyObject *s_verified, *s_verdict, *s_keyward, *s_state, *s_headers;
static PyObject *s_http_x_api_key, *s_http_authorization, *s_http_token_id, *s_http_token_secret;
static PyObject *s_serve, *s_wsgi;

static const char NAME_API_KEY[] = "x-api-key";
static const char NAME_AUTHORIZATION[] = "authorization";
static const char NAME_TOKEN_ID[] = "x-api-token-id";
static const char NAME_TOKEN_SECRET[] = "x-api-token-secret-key";

static PyTypeObject JudgeType;

/* What one Judge (one middleware, one list of required scopes) needs for every request. */
typedef struct {
    PyObject_HEAD
    PyObject *store;          /* the keyward.Store (its `_handle` is read per request) */
    PyObject *scope_set;      /* frozenset of the required scopes, for the Verified */
    PyObject *scope_bytes;    /* tuple of bytes: the scopes in UTF-8, owned for c_scopes */
    struct kw_str *c_scopes;  /* the required scopes as the C call takes them */
    Py_ssize_t n_scopes;
    uint32_t cost;
    PyObject *verdict_type;   /* keyward.types.Verdict */
    /* Its slots `_data`, `reason`, `http_status`, `ok` (member descriptors, held), written
     * directly; NULL where the class has no such slot (then set as attributes). */
    PyObject *slot_descr[4];
    PyObject *verified_type;  /* keyward.middleware.Verified (a NamedTuple) */
    PyObject *reasons;        /* tuple: kw_reason value -> keyward.Reason */
    PyObject *reason_type;    /* keyward.Reason, for a value beyond the tuple */
    PyObject *header_error;   /* status -> the exception the Python path raises */
} Judge;

static void judge_dealloc(Judge *self) {
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->store);
    Py_CLEAR(self->scope_set);
    Py_CLEAR(self->scope_bytes);
    PyMem_Free(self->c_scopes);
    Py_CLEAR(self->verdict_type);
    for (size_t i = 0; i < 4; i++) Py_CLEAR(self->slot_descr[i]);
    Py_CLEAR(self->verified_type);
    Py_CLEAR(self->reasons);
    Py_CLEAR(self->reason_type);
    Py_CLEAR(self->header_error);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int judge_traverse(Judge *self, visitproc visit, void *arg) {
    Py_VISIT(self->store);
    Py_VISIT(self->scope_set);
    Py_VISIT(self->scope_bytes);
    Py_VISIT(self->verdict_type);
    for (size_t i = 0; i < 4; i++) Py_VISIT(self->slot_descr[i]);
    Py_VISIT(self->verified_type);
    Py_VISIT(self->reasons);
    Py_VISIT(self->reason_type);
    Py_VISIT(self->header_error);
    return 0;
}

/* Judge(store, scopes, scope_set, cost, verdict_type, verified_type, reasons, reason_type,
 *       header_error): `scopes` a tuple of str the Python code has already checked. */
static int judge_init(Judge *self, PyObject *args, PyObject *kwargs) {
    PyObject *store, *scopes, *scope_set, *verdict_type, *verified_type, *reasons, *reason_type;
    PyObject *header_error;
    unsigned long cost;
    static char *kwlist[] = {"store", "scopes", "scope_set", "cost", "verdict_type", "verified_type",
                             "reasons", "reason_type", "header_error", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!O!kOOO!OO:Judge", kwlist, &store, &PyTuple_Type,
                                     &scopes, &PyFrozenSet_Type, &scope_set, &cost, &verdict_type,
                                     &verified_type, &PyTuple_Type, &reasons, &reason_type,
                                     &header_error)) {
        return -1;
    }
    if (self->store != NULL) {
        /* Its fields are read without the GIL during a verify: never changed once set. */
        PyErr_SetString(PyExc_TypeError, "Judge: already initialised");
        return -1;
    }
    if (cost > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "cost must fit in 32 bits");
        return -1;
    }
    if (!PyType_Check(verdict_type) || !PyType_Check(verified_type) ||
        !PyType_IsSubtype((PyTypeObject *)verified_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "Judge: verdict_type and verified_type must be types");
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(scopes);
    PyObject *encoded = PyTuple_New(n);
    if (encoded == NULL) return -1;
    struct kw_str *c_scopes = n ? PyMem_Calloc((size_t)n, sizeof(struct kw_str)) : NULL;
    if (n && c_scopes == NULL) {
        Py_DECREF(encoded);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *scope = PyTuple_GET_ITEM(scopes, i);
        PyObject *utf8 = PyUnicode_Check(scope) ? PyUnicode_AsUTF8String(scope) : NULL;
        if (utf8 == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "Judge: each scope must be str");
            Py_DECREF(encoded);
            PyMem_Free(c_scopes);
            return -1;
        }
        PyTuple_SET_ITEM(encoded, i, utf8); /* steals the reference */
        c_scopes[i].ptr = PyBytes_AS_STRING(utf8);
        c_scopes[i].len = (size_t)PyBytes_GET_SIZE(utf8);
    }
    Py_XSETREF(self->scope_bytes, encoded);
    PyMem_Free(self->c_scopes);
    self->c_scopes = c_scopes;
    self->n_scopes = n;
    self->cost = (uint32_t)cost;
    Py_XSETREF(self->store, Py_NewRef(store));
    Py_XSETREF(self->scope_set, Py_NewRef(scope_set));
    Py_XSETREF(self->verdict_type, Py_NewRef(verdict_type));
    PyObject *const slot_names[4] = {s_data, s_reason, s_http_status, s_ok};
    for (size_t i = 0; i < 4; i++) {
        PyObject *descr = PyObject_GetAttr(verdict_type, slot_names[i]);
        if (descr == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return -1;
            PyErr_Clear();
        } else if (!Py_IS_TYPE(descr, &PyMemberDescr_Type) ||
                   !PyType_IsSubtype((PyTypeObject *)verdict_type, PyDescr_TYPE(descr))) {
            Py_CLEAR(descr); /* not a slot of this class: set as an attribute */
        }
        Py_XSETREF(self->slot_descr[i], descr);
    }
    Py_XSETREF(self->verified_type, Py_NewRef(verified_type));
    Py_XSETREF(self->reasons, Py_NewRef(reasons));
    Py_XSETREF(self->reason_type, Py_NewRef(reason_type));
    Py_XSETREF(self->header_error, Py_NewRef(header_error));
    return 0;
}

/* Raises what the Python path raises for a failed header-reading call. */
static void raise_status(Judge *self, kw_status status) {
    PyObject *exc = PyObject_CallFunction(self->header_error, "I", (unsigned int)status);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
}

/* Sets the Verdict's slot `i` (named `name`): straight into the slot when the class has it. */
static int set_slot(Judge *self, PyObject *verdict, size_t i, PyObject *name, PyObject *value) {
    PyObject *descr = self->slot_descr[i];
    if (descr == NULL) return PyObject_SetAttr(verdict, name, value);
    return PyMember_SetOne((char *)verdict, ((PyMemberDescrObject *)descr)->d_member, value);
}

/* Verifies one credential header and builds its Verdict (a new reference), or sets an
 * exception and returns NULL. `*accepted_plain` is set when the request is accepted and has
 * no rate-limit fields to send. `owner` holds `value` alive while the GIL is released.
 * `name` NULL: the request has no credential header (the library answers that error). */
static PyObject *verify_one(Judge *self, const char *name, size_t name_len, const char *value,
                            size_t value_len, PyObject *owner, int *accepted_plain) {
    PyObject *handle_obj = PyObject_GetAttr(self->store, s_handle);
    if (handle_obj == NULL) return NULL;
    unsigned long long handle = PyLong_AsUnsignedLongLong(handle_obj);
    Py_DECREF(handle_obj);
    if (handle == (unsigned long long)-1 && PyErr_Occurred()) return NULL;

    PyObject *data = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(struct kw_verdict));
    if (data == NULL) return NULL;
    /* Written whole by a successful call, before anything else can see the bytes object. */
    struct kw_verdict *out = (struct kw_verdict *)PyBytes_AS_STRING(data);
    const struct kw_header header = {name, name_len, value, value_len};
    kw_status status;
    Py_INCREF(owner);
    Py_BEGIN_ALLOW_THREADS
    status = kw_verify_headers_ex((kw_store)handle, &header, name != NULL, self->c_scopes, (size_t)self->n_scopes,
                                  self->cost, 0, KW_VERIFY_RATE_FIELDS, out, NULL, 0, NULL);
    Py_END_ALLOW_THREADS
    Py_DECREF(owner);
    if (status != KW_OK) {
        Py_DECREF(data);
        raise_status(self, status);
        return NULL;
    }

    PyObject *reason;
    if ((Py_ssize_t)out->reason < PyTuple_GET_SIZE(self->reasons)) {
        reason = Py_NewRef(PyTuple_GET_ITEM(self->reasons, out->reason));
    } else {
        reason = PyObject_CallFunction(self->reason_type, "I", (unsigned int)out->reason);
        if (reason == NULL) {
            Py_DECREF(data);
            return NULL;
        }
    }
    PyObject *http_status = PyLong_FromUnsignedLong(out->http_status);
    PyTypeObject *type = (PyTypeObject *)self->verdict_type;
    PyObject *verdict = http_status ? type->tp_alloc(type, 0) : NULL;
    int ok = out->reason == KW_REASON_VALID;
    if (verdict == NULL || set_slot(self, verdict, 0, s_data, data) < 0 ||
        set_slot(self, verdict, 1, s_reason, reason) < 0 ||
        set_slot(self, verdict, 2, s_http_status, http_status) < 0 ||
        set_slot(self, verdict, 3, s_ok, ok ? Py_True : Py_False) < 0) {
        Py_CLEAR(verdict);
    }
    *accepted_plain = ok && out->rate_scope == 0;
    Py_XDECREF(http_status);
    Py_DECREF(reason);
    Py_DECREF(data);
    return verdict;
}

/* The Verified an accepted request carries for the middlewares stacked inside: the
 * NamedTuple made as `tuple.__new__(Verified, (store, verdict, scopes, None))` makes it. */
static PyObject *make_verified(Judge *self, PyObject *verdict) {
    PyTypeObject *type = (PyTypeObject *)self->verified_type;
    PyObject *verified = type->tp_alloc(type, 4);
    if (verified == NULL) return NULL;
    PyTuple_SET_ITEM(verified, 0, Py_NewRef(self->store));
    PyTuple_SET_ITEM(verified, 1, Py_NewRef(verdict));
    PyTuple_SET_ITEM(verified, 2, Py_NewRef(self->scope_set));
    PyTuple_SET_ITEM(verified, 3, Py_NewRef(Py_None));
    return verified;
}

/* Borrowed value of `key` in `dict`, or NULL (with an exception set on error). */
static PyObject *get(PyObject *dict, PyObject *key) { return PyDict_GetItemWithError(dict, key); }

/* 1 if `dict` holds any of the keys, 0 if none, -1 with an exception set. */
static int holds_any(PyObject *dict, PyObject *const *keys, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int found = PyDict_Contains(dict, keys[i]);
        if (found != 0) return found;
    }
    return 0;
}

/* wsgi(environ): the environ itself once the accepted request's verdict is attached; the
 * Verdict of a verified request the Python code must finish; None for a request left to it. */
static PyObject *judge_wsgi(Judge *self, PyObject *environ) {
    if (!PyDict_CheckExact(environ)) Py_RETURN_NONE;
    /* Verified already, or the token pair: the Python path's. */
    PyObject *const leave[] = {s_verified, s_http_token_id, s_http_token_secret};
    int left = holds_any(environ, leave, sizeof leave / sizeof leave[0]);
    if (left != 0) return left < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *key = get(environ, s_http_x_api_key);
    if (key == NULL && PyErr_Occurred()) return NULL;
    PyObject *authorization = get(environ, s_http_authorization);
    if (authorization == NULL && PyErr_Occurred()) return NULL;
    if (key != NULL && authorization != NULL) Py_RETURN_NONE; /* two credentials */
    PyObject *value = key != NULL ? key : authorization;
    int accepted_plain = 0;
    if (value == NULL) return verify_one(self, NULL, 0, NULL, 0, Py_None, &accepted_plain); /* none */
    if (!PyUnicode_CheckExact(value) || !PyUnicode_IS_ASCII(value)) Py_RETURN_NONE;
    Py_ssize_t len;
    const char *text = PyUnicode_AsUTF8AndSize(value, &len); /* ASCII: the string's own bytes */
    if (text == NULL) return NULL;
    PyObject *verdict = key != NULL
        ? verify_one(self, NAME_API_KEY, sizeof NAME_API_KEY - 1, text, (size_t)len, value, &accepted_plain)
        : verify_one(self, NAME_AUTHORIZATION, sizeof NAME_AUTHORIZATION - 1, text, (size_t)len, value,
                     &accepted_plain);
    if (verdict == NULL || !accepted_plain) return verdict;
    PyObject *verified = make_verified(self, verdict);
    int failed = verified == NULL || PyDict_SetItem(environ, s_verdict, verdict) < 0 ||
                 PyDict_SetItem(environ, s_verified, verified) < 0;
    Py_XDECREF(verified);
    Py_DECREF(verdict);
    return failed ? NULL : Py_NewRef(environ);
}

static int name_is(PyObject *name, const char *expected, size_t expected_len) {
    return (size_t)PyBytes_GET_SIZE(name) == expected_len &&
           memcmp(PyBytes_AS_STRING(name), expected, expected_len) == 0;
}

/* asgi(scope): a copy of the scope with the accepted request's verdict attached; the Verdict
 * of a verified request the Python code must finish; None for a request left to it. */
static PyObject *judge_asgi(Judge *self, PyObject *scope) {
    if (!PyDict_CheckExact(scope)) Py_RETURN_NONE;
    int verified_already = PyDict_Contains(scope, s_verified);
    if (verified_already != 0) return verified_already < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *headers = get(scope, s_headers);
    if (headers == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    if (!PyList_CheckExact(headers) && !PyTuple_CheckExact(headers)) Py_RETURN_NONE;
    PyObject *found = NULL; /* the one credential header's value */
    const char *found_name = NULL;
    size_t found_name_len = 0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(headers);
    PyObject **items = PySequence_Fast_ITEMS(headers);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[i];
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2) Py_RETURN_NONE;
        PyObject *name = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
        if (!PyBytes_CheckExact(name) || !PyBytes_CheckExact(value)) Py_RETURN_NONE;
        const char *this_name = NULL;
        size_t this_len = 0;
        if (name_is(name, NAME_API_KEY, sizeof NAME_API_KEY - 1)) {
            this_name = NAME_API_KEY, this_len = sizeof NAME_API_KEY - 1;
        } else if (name_is(name, NAME_AUTHORIZATION, sizeof NAME_AUTHORIZATION - 1)) {
            this_name = NAME_AUTHORIZATION, this_len = sizeof NAME_AUTHORIZATION - 1;
        } else if (name_is(name, NAME_TOKEN_ID, sizeof NAME_TOKEN_ID - 1) ||
                   name_is(name, NAME_TOKEN_SECRET, sizeof NAME_TOKEN_SECRET - 1)) {
            Py_RETURN_NONE;
        }
        if (this_name != NULL) {
            if (found != NULL) Py_RETURN_NONE; /* several credential headers */
            found = value, found_name = this_name, found_name_len = this_len;
        }
    }
    int accepted_plain = 0;
    if (found == NULL) return verify_one(self, NULL, 0, NULL, 0, Py_None, &accepted_plain); /* none */
    PyObject *verdict = verify_one(self, found_name, found_name_len, PyBytes_AS_STRING(found),
                                   (size_t)PyBytes_GET_SIZE(found), found, &accepted_plain);
    if (verdict == NULL || !accepted_plain) return verdict;
    /* As the Python middleware does: copy the scope (the ASGI spec), attach the verdict. */
    PyObject *verified = make_verified(self, verdict);
    PyObject *copy = verified ? PyDict_Copy(scope) : NULL;
    PyObject *state = NULL;
    int failed = copy == NULL;
    if (!failed) {
        /* Held: testing and copying an application's state object may run its code. */
        PyObject *old_state = Py_XNewRef(get(copy, s_state));
        int has_state = old_state != NULL ? PyObject_IsTrue(old_state) : (PyErr_Occurred() ? -1 : 0);
        state = has_state >= 0 ? PyDict_New() : NULL;
        failed = state == NULL || (has_state == 1 && PyDict_Update(state, old_state) < 0) ||
                 PyDict_SetItem(state, s_keyward, verdict) < 0 ||
                 PyDict_SetItem(copy, s_keyward, verdict) < 0 ||
                 PyDict_SetItem(copy, s_verified, verified) < 0 ||
                 PyDict_SetItem(copy, s_state, state) < 0;
        Py_XDECREF(old_state);
    }
    Py_XDECREF(state);
    Py_XDECREF(verified);
    Py_DECREF(verdict);
    if (failed) {
        Py_XDECREF(copy);
        return NULL;
    }
    return copy;
}

/* A WSGIMiddleware's request path (the middleware class derives from Gate): the judge of its
 * fixed scopes and the application, called from C. `_judge` None: every request goes to the
 * middleware's Python `_serve`; another object than a Judge: its `wsgi` method is called
 * (tests record what it does). */
typedef struct {
    PyObject_HEAD
    PyObject *app;   /* the WSGI application the middleware protects */
    PyObject *judge; /* a Judge, None, or an object with a `wsgi` method */
} Gate;

static int gate_traverse(Gate *self, visitproc visit, void *arg) {
    Py_VISIT(self->app);
    Py_VISIT(self->judge);
    return 0;
}

static int gate_clear(Gate *self) {
    Py_CLEAR(self->app);
    Py_CLEAR(self->judge);
    return 0;
}

static void gate_dealloc(Gate *self) {
    PyObject_GC_UnTrack(self);
    gate_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The exception being raised, normalised and cleared (a new reference), or NULL if none. */
static PyObject *take_exception(void) {
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (type == NULL) return NULL;
    PyErr_NormalizeException(&type, &value, &traceback);
    if (value != NULL && traceback != NULL) PyException_SetTraceback(value, traceback);
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    return value;
#endif
}

/* gate(environ, start_response): the usual request (accepted, its verdict attached) goes
 * straight to the application; any other is finished by `self._serve(environ,
 * start_response, judged)`, `judged` being what the judge returned or raised (the Python
 * path's answer, so behaviour is unchanged); a call the judge cannot take (no judge, other
 * arguments) is `self._serve(*args, **kwargs)`. */
static PyObject *gate_call(Gate *self, PyObject *args, PyObject *kwargs) {
    if (self->judge == NULL || self->judge == Py_None || kwargs != NULL || PyTuple_GET_SIZE(args) != 2) {
        PyObject *serve = PyObject_GetAttr((PyObject *)self, s_serve);
        if (serve == NULL) return NULL;
        PyObject *result = PyObject_Call(serve, args, kwargs);
        Py_DECREF(serve);
        return result;
    }
    PyObject *environ = PyTuple_GET_ITEM(args, 0);
    PyObject *judged = Py_IS_TYPE(self->judge, &JudgeType)
        ? judge_wsgi((Judge *)self->judge, environ)
        : PyObject_CallMethodOneArg(self->judge, s_wsgi, environ);
    if (judged == environ) {
        Py_DECREF(judged);
        if (self->app == NULL) {
            PyErr_SetString(PyExc_AttributeError, "WSGIMiddleware has no app");
            return NULL;
        }
        return PyObject_Call(self->app, args, NULL);
    }
    if (judged == NULL) {
        judged = take_exception();
        if (judged == NULL) return NULL;
    }
    PyObject *result = PyObject_CallMethodObjArgs((PyObject *)self, s_serve, environ, PyTuple_GET_ITEM(args, 1),
                                                  judged, NULL);
    Py_DECREF(judged);
    return result;
}

static PyMemberDef gate_members[] = {
    {"app", Py_T_OBJECT_EX, offsetof(Gate, app), 0, "The WSGI application the middleware protects."},
    {"_judge", Py_T_OBJECT_EX, offsetof(Gate, judge), 0, "The compiled judge of the fixed scopes, or None."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject GateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "keyward._kw_fast.Gate",
    .tp_doc = "Base of WSGIMiddleware: its usual request judged and passed on in C (see keyward/_kw_fast.c).",
    .tp_basicsize = sizeof(Gate),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)gate_dealloc,
    .tp_traverse = (traverseproc)gate_traverse,
    .tp_clear = (inquiry)gate_clear,
    .tp_call = (ternaryfunc)gate_call,
    .tp_members = gate_members,
};

static PyMethodDef judge_methods[] = {
    {"wsgi", (PyCFunction)judge_wsgi, METH_O,
     "wsgi(environ): the environ (accepted, verdict attached), a Verdict to finish, or None."},
    {"asgi", (PyCFunction)judge_asgi, METH_O,
     "asgi(scope): a new scope (accepted, verdict attached), a Verdict to finish, or None."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject JudgeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "keyward._kw_fast.Judge",
    .tp_doc = "The middlewares' usual request, judged in C (see keyward/_kw_fast.c).",
    .tp_basicsize = sizeof(Judge),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)judge_init,
    .tp_dealloc = (destructor)judge_dealloc,
    .tp_traverse = (traverseproc)judge_traverse,
    .tp_methods = judge_methods,
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "keyward._kw_fast",
    .m_doc = "The middlewares' usual request, judged in C (see keyward/_kw_fast.c).",
    .m_size = -1,
};

static int intern(PyObject **slot, const char *text) {
    *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC PyInit__kw_fast(void) {
    if (intern(&s_handle, "_handle") || intern(&s_data, "_data") || intern(&s_reason, "reason") ||
        intern(&s_http_status, "http_status") || intern(&s_ok, "ok") ||
        intern(&s_verified, "keyward.verified") || intern(&s_verdict, "keyward.verdict") ||
        intern(&s_keyward, "keyward") || intern(&s_state, "state") || intern(&s_headers, "headers") ||
        intern(&s_http_x_api_key, "HTTP_X_API_KEY") || intern(&s_http_authorization, "HTTP_AUTHORIZATION") ||
        intern(&s_http_token_id, "HTTP_X_API_TOKEN_ID") ||
        intern(&s_http_token_secret, "HTTP_X_API_TOKEN_SECRET_KEY") || intern(&s_serve, "_serve") ||
        intern(&s_wsgi, "wsgi")) {
        return NULL;
    }
    if (PyType_Ready(&JudgeType) < 0 || PyType_Ready(&GateType) < 0) return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    if (PyModule_AddObjectRef(module, "Judge", (PyObject *)&JudgeType) < 0 ||
        PyModule_AddObjectRef(module, "Gate", (PyObject *)&GateType) < 0 ||
        PyModule_AddIntConstant(module, "VERDICT_SIZE", (long)sizeof(struct kw_verdict)) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
