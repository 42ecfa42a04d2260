//! Raw declarations of the libmodsecurity 3 C API, written by hand from the 3.0.9 headers
//! (/usr/include/modsecurity/{modsecurity,rules_set,transaction,intervention}.h). Only the
//! functions the reference needs.

use std::ffi::{c_char, c_int, c_uchar, c_void};

/// `ModSecurity` (opaque C++ object behind the C API).
#[repr(C)]
pub(super) struct ModSecurity {
    _opaque: [u8; 0],
}

/// `RulesSet` (opaque).
#[repr(C)]
pub(super) struct RulesSet {
    _opaque: [u8; 0],
}

/// `Transaction` (opaque).
#[repr(C)]
pub(super) struct Transaction {
    _opaque: [u8; 0],
}

/// `ModSecurityIntervention` (intervention.h). The caller owns it; `url` and `log` are
/// `strdup`ed by the library and must be released with `free`.
#[repr(C)]
pub(super) struct ModSecurityIntervention {
    pub(super) status: c_int,
    pub(super) pause: c_int,
    pub(super) url: *mut c_char,
    pub(super) log: *mut c_char,
    pub(super) disruptive: c_int,
}

/// `ModSecLogCb`: (per-transaction data, log entry). With the default TextLogProperty the
/// entry is a NUL-terminated string that lives only for the call.
pub(super) type ModSecLogCb = Option<unsafe extern "C" fn(*mut c_void, *const c_void)>;

unsafe extern "C" {
    pub(super) fn msc_init() -> *mut ModSecurity;
    pub(super) fn msc_who_am_i(msc: *mut ModSecurity) -> *const c_char;
    pub(super) fn msc_set_connector_info(msc: *mut ModSecurity, connector: *const c_char);
    pub(super) fn msc_set_log_cb(msc: *mut ModSecurity, cb: ModSecLogCb);
    pub(super) fn msc_cleanup(msc: *mut ModSecurity);

    pub(super) fn msc_create_rules_set() -> *mut RulesSet;
    pub(super) fn msc_rules_add_file(
        rules: *mut RulesSet,
        file: *const c_char,
        error: *mut *const c_char,
    ) -> c_int;
    pub(super) fn msc_rules_add(
        rules: *mut RulesSet,
        plain_rules: *const c_char,
        error: *mut *const c_char,
    ) -> c_int;
    pub(super) fn msc_rules_cleanup(rules: *mut RulesSet) -> c_int;

    pub(super) fn msc_new_transaction(
        ms: *mut ModSecurity,
        rules: *mut RulesSet,
        log_cb_data: *mut c_void,
    ) -> *mut Transaction;
    pub(super) fn msc_process_connection(
        t: *mut Transaction,
        client: *const c_char,
        c_port: c_int,
        server: *const c_char,
        s_port: c_int,
    ) -> c_int;
    pub(super) fn msc_process_uri(
        t: *mut Transaction,
        uri: *const c_char,
        protocol: *const c_char,
        http_version: *const c_char,
    ) -> c_int;
    pub(super) fn msc_add_n_request_header(
        t: *mut Transaction,
        key: *const c_uchar,
        len_key: usize,
        value: *const c_uchar,
        len_value: usize,
    ) -> c_int;
    pub(super) fn msc_process_request_headers(t: *mut Transaction) -> c_int;
    pub(super) fn msc_append_request_body(
        t: *mut Transaction,
        body: *const c_uchar,
        size: usize,
    ) -> c_int;
    pub(super) fn msc_process_request_body(t: *mut Transaction) -> c_int;
    pub(super) fn msc_add_n_response_header(
        t: *mut Transaction,
        key: *const c_uchar,
        len_key: usize,
        value: *const c_uchar,
        len_value: usize,
    ) -> c_int;
    pub(super) fn msc_process_response_headers(
        t: *mut Transaction,
        code: c_int,
        protocol: *const c_char,
    ) -> c_int;
    pub(super) fn msc_append_response_body(
        t: *mut Transaction,
        body: *const c_uchar,
        size: usize,
    ) -> c_int;
    pub(super) fn msc_process_response_body(t: *mut Transaction) -> c_int;
    pub(super) fn msc_process_logging(t: *mut Transaction) -> c_int;
    pub(super) fn msc_intervention(t: *mut Transaction, it: *mut ModSecurityIntervention) -> c_int;
    pub(super) fn msc_transaction_cleanup(t: *mut Transaction);

    /// libc's `free`, for the strings the library `strdup`s (errors, intervention fields).
    pub(super) fn free(ptr: *mut c_void);
}
