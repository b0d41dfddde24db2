//! The C ABI (`kw_` functions, `include/keyward.h`). The only module that knows about C.
