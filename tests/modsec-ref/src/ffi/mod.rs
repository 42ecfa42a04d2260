//! Safe wrapper over libmodsecurity 3's C API: the one module of the project with `unsafe`.
//!
//! Ownership mirrors the C API: a [`ModSecurity`] and a [`RulesSet`] outlive every
//! [`Transaction`] made from them (the lifetime `'a` enforces it). None of the types is
//! `Send` or `Sync`: they hold raw pointers, so a thread that wants the reference loads its
//! own. Log lines reach Rust through one callback registered on the `ModSecurity`; the
//! library hands it the per-transaction pointer given to `msc_new_transaction`, which here is
//! the transaction's own `LogSink`, so every line lands with the transaction that wrote it.
#![allow(unsafe_code)]

mod sys;

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::marker::PhantomData;
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::{self, NonNull};
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};

use crate::logline;

/// Serialises library set-up and rule loading across threads: 3.0.9's SecLang scanner
/// (flex) keeps global state, and two rule sets loading at once corrupt each other ("syntax
/// error, unexpected end of file"), e.g. when tests run in parallel.
static SETUP: Mutex<()> = Mutex::new(());

fn setup_lock() -> MutexGuard<'static, ()> {
    // The guarded data is `()`: a panic elsewhere cannot leave it inconsistent.
    SETUP
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The library instance (`msc_init`): owns the log callback.
pub struct ModSecurity {
    raw: NonNull<sys::ModSecurity>,
}

impl ModSecurity {
    /// Initialises libmodsecurity and routes its log lines to the transactions' sinks.
    pub fn new() -> Result<Self, String> {
        let _setup = setup_lock();
        // SAFETY: msc_init has no preconditions; it returns a new instance or null.
        let raw = NonNull::new(unsafe { sys::msc_init() }).ok_or("msc_init returned null")?;
        // SAFETY: `raw` is a live instance; the connector name is a NUL-terminated literal
        // (the library copies it into a std::string).
        unsafe { sys::msc_set_connector_info(raw.as_ptr(), c"bulkhead-modsec-ref".as_ptr()) };
        // SAFETY: `raw` is live; `log_line` has the ModSecLogCb signature, stays valid for
        // the program's life and never unwinds.
        unsafe { sys::msc_set_log_cb(raw.as_ptr(), Some(log_line)) };
        Ok(Self { raw })
    }

    /// The library's self-description, e.g. "ModSecurity v3.0.9 (Linux)".
    pub fn who_am_i(&self) -> String {
        // SAFETY: `self.raw` is live; the result points into the instance's own string,
        // which we copy before returning, or is null.
        let s = unsafe { sys::msc_who_am_i(self.raw.as_ptr()) };
        if s.is_null() {
            return String::new();
        }
        // SAFETY: non-null results are NUL-terminated and live as long as `self`.
        unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
    }
}

impl Drop for ModSecurity {
    fn drop(&mut self) {
        // SAFETY: `self.raw` came from msc_init and is released once; every Transaction
        // borrowing it has been dropped (lifetime 'a).
        unsafe { sys::msc_cleanup(self.raw.as_ptr()) };
    }
}

/// A compiled rule set (`msc_create_rules_set` + `msc_rules_add*`).
pub struct RulesSet {
    raw: NonNull<sys::RulesSet>,
}

impl RulesSet {
    /// An empty rule set.
    pub fn new() -> Result<Self, String> {
        // SAFETY: no preconditions; returns a new rule set or null.
        let raw = NonNull::new(unsafe { sys::msc_create_rules_set() })
            .ok_or("msc_create_rules_set returned null")?;
        Ok(Self { raw })
    }

    /// Loads the files in order (Include and relative data files resolve as ModSecurity does).
    pub fn from_files<P: AsRef<Path>>(files: impl IntoIterator<Item = P>) -> Result<Self, String> {
        let mut set = Self::new()?;
        for f in files {
            set.add_file(f.as_ref())?;
        }
        Ok(set)
    }

    /// Loads SecLang text.
    pub fn from_text(text: &str) -> Result<Self, String> {
        let mut set = Self::new()?;
        set.add_text(text)?;
        Ok(set)
    }

    /// Adds one file; returns the number of rules the library reports, or its error text.
    pub fn add_file(&mut self, path: &Path) -> Result<usize, String> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| format!("{}: path contains a NUL byte", path.display()))?;
        let mut err: *const c_char = ptr::null();
        let _setup = setup_lock();
        // SAFETY: `self.raw` is live and exclusively borrowed; `c` is NUL-terminated and
        // outlives the call; `err` is a valid out-pointer the library may set to a
        // strdup'ed string, which take_error frees.
        let n = unsafe { sys::msc_rules_add_file(self.raw.as_ptr(), c.as_ptr(), &mut err) };
        loaded(n, err)
    }

    /// Adds SecLang text; returns the number of rules the library reports, or its error text.
    pub fn add_text(&mut self, text: &str) -> Result<usize, String> {
        let c = CString::new(text).map_err(|_| "rules text contains a NUL byte".to_string())?;
        let mut err: *const c_char = ptr::null();
        let _setup = setup_lock();
        // SAFETY: as in add_file.
        let n = unsafe { sys::msc_rules_add(self.raw.as_ptr(), c.as_ptr(), &mut err) };
        loaded(n, err)
    }
}

impl Drop for RulesSet {
    fn drop(&mut self) {
        // SAFETY: `self.raw` came from msc_create_rules_set and is released once; no
        // Transaction borrowing it is alive (lifetime 'a).
        unsafe { sys::msc_rules_cleanup(self.raw.as_ptr()) };
    }
}

/// Turns an msc_rules_add* result into rules loaded or the library's error text.
fn loaded(n: c_int, err: *const c_char) -> Result<usize, String> {
    let msg = take_string(err.cast_mut());
    if n < 0 {
        return Err(msg.unwrap_or_else(|| format!("libmodsecurity failed to load rules ({n})")));
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Copies and frees a string the library `strdup`ed (null gives None).
fn take_string(p: *mut c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null strings from the library are NUL-terminated and still allocated.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    // SAFETY: the library allocated `p` with strdup (malloc) and handed ownership to us;
    // it is freed once, here.
    unsafe { sys::free(p.cast()) };
    Some(s)
}

/// The lines libmodsecurity logged for one transaction (its error-log output).
#[derive(Default)]
struct LogSink {
    lines: RefCell<Vec<String>>,
}

/// The log callback: appends the line to the sink of the transaction that wrote it.
///
/// # Safety
/// `data` must be null or the `LogSink` pointer of a live [`Transaction`], and `entry` null
/// or a NUL-terminated string valid for the call (the TextLogProperty default).
unsafe extern "C" fn log_line(data: *mut c_void, entry: *const c_void) {
    if data.is_null() || entry.is_null() {
        return;
    }
    // SAFETY: every transaction is created with its sink's pointer (Rc::as_ptr) as the
    // callback data and keeps that Rc until after msc_transaction_cleanup; the library calls
    // back only from inside msc_* calls on that transaction, on this thread. Only shared
    // references to the sink exist, and RefCell guards the Vec.
    let sink = unsafe { &*data.cast::<LogSink>() };
    // SAFETY: with TextLogProperty, `entry` is a NUL-terminated string alive for this call.
    let text = unsafe { CStr::from_ptr(entry.cast::<c_char>()) };
    // No Rust code holds a borrow across an msc_* call, so this never fails; if it did,
    // dropping a line beats unwinding into C.
    if let Ok(mut lines) = sink.lines.try_borrow_mut() {
        lines.push(text.to_string_lossy().into_owned());
    }
}

/// A disruptive action the library asked the connector to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intervention {
    /// HTTP status to answer with (403 by default for deny).
    pub status: u16,
    /// Id of the rule that caused it, read from its log line (0 when absent).
    pub rule_id: u32,
    /// SecLang phase it happened in (0 when absent).
    pub phase: u8,
    /// The log line ModSecurity attached ("ModSecurity: Access denied with code 403 …").
    pub message: String,
    /// Redirect target, for `redirect` actions.
    pub url: Option<String>,
}

/// One HTTP transaction, fed in the C API's stages (the same as bulkhead_waf::Transaction).
pub struct Transaction<'a> {
    raw: NonNull<sys::Transaction>,
    sink: Rc<LogSink>,
    intervention: Option<Intervention>,
    _engine: PhantomData<(&'a ModSecurity, &'a RulesSet)>,
}

impl<'a> Transaction<'a> {
    /// Starts a transaction on `rules`.
    pub fn new(msc: &'a ModSecurity, rules: &'a RulesSet) -> Result<Self, String> {
        let sink = Rc::new(LogSink::default());
        let data = Rc::as_ptr(&sink).cast_mut().cast::<c_void>();
        // SAFETY: both instances are live and outlive the transaction ('a); `data` points
        // to the sink this transaction keeps until after msc_transaction_cleanup (Drop), so
        // the callback never sees a dangling pointer.
        let raw = unsafe { sys::msc_new_transaction(msc.raw.as_ptr(), rules.raw.as_ptr(), data) };
        let raw = NonNull::new(raw).ok_or("msc_new_transaction returned null")?;
        Ok(Self {
            raw,
            sink,
            intervention: None,
            _engine: PhantomData,
        })
    }

    /// Connection phase: client and server addresses.
    pub fn process_connection(
        &mut self,
        client: IpAddr,
        client_port: u16,
        server: IpAddr,
        server_port: u16,
    ) {
        let (c, s) = (
            c_bytes(client.to_string().as_bytes()),
            c_bytes(server.to_string().as_bytes()),
        );
        // SAFETY: `self.raw` is live and exclusively borrowed; both strings are
        // NUL-terminated and outlive the call (the library copies them).
        unsafe {
            sys::msc_process_connection(
                self.raw.as_ptr(),
                c.as_ptr(),
                c_int::from(client_port),
                s.as_ptr(),
                c_int::from(server_port),
            )
        };
        self.check_intervention();
    }

    /// Request line: raw uri, method ("GET"), version without "HTTP/" ("1.1"). The C API
    /// takes C strings, so each is cut at its first NUL byte, as a C connector's would be.
    pub fn process_uri(&mut self, uri: &[u8], method: &[u8], http_version: &[u8]) {
        let (u, m, v) = (c_bytes(uri), c_bytes(method), c_bytes(http_version));
        // SAFETY: `self.raw` is live and exclusively borrowed; the three strings are
        // NUL-terminated and outlive the call (the library copies them).
        unsafe { sys::msc_process_uri(self.raw.as_ptr(), u.as_ptr(), m.as_ptr(), v.as_ptr()) };
        self.check_intervention();
    }

    /// One request header, bytes as received.
    pub fn add_request_header(&mut self, name: &[u8], value: &[u8]) {
        // SAFETY: `self.raw` is live and exclusively borrowed; the slices are valid for
        // their lengths during the call (the library copies them).
        unsafe {
            sys::msc_add_n_request_header(
                self.raw.as_ptr(),
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        };
    }

    /// Phase 1.
    pub fn process_request_headers(&mut self) -> Option<Intervention> {
        // SAFETY: `self.raw` is live and exclusively borrowed.
        unsafe { sys::msc_process_request_headers(self.raw.as_ptr()) };
        self.check_intervention()
    }

    /// Appends request body bytes.
    pub fn append_request_body(&mut self, data: &[u8]) {
        // SAFETY: `self.raw` is live and exclusively borrowed; `data` is valid for its
        // length during the call (the library copies it).
        unsafe { sys::msc_append_request_body(self.raw.as_ptr(), data.as_ptr(), data.len()) };
        self.check_intervention();
    }

    /// Phase 2 (the body processor runs first).
    pub fn process_request_body(&mut self) -> Option<Intervention> {
        // SAFETY: `self.raw` is live and exclusively borrowed.
        unsafe { sys::msc_process_request_body(self.raw.as_ptr()) };
        self.check_intervention()
    }

    /// One response header.
    pub fn add_response_header(&mut self, name: &[u8], value: &[u8]) {
        // SAFETY: as in add_request_header.
        unsafe {
            sys::msc_add_n_response_header(
                self.raw.as_ptr(),
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        };
    }

    /// Phase 3; `http_version` like "1.1" (the library sees "HTTP/1.1").
    pub fn process_response_headers(
        &mut self,
        status: u16,
        http_version: &[u8],
    ) -> Option<Intervention> {
        let proto = c_bytes(&[b"HTTP/".as_slice(), http_version].concat());
        // SAFETY: `self.raw` is live and exclusively borrowed; `proto` is NUL-terminated and
        // outlives the call.
        unsafe {
            sys::msc_process_response_headers(
                self.raw.as_ptr(),
                c_int::from(status),
                proto.as_ptr(),
            )
        };
        self.check_intervention()
    }

    /// Appends response body bytes.
    pub fn append_response_body(&mut self, data: &[u8]) {
        // SAFETY: as in append_request_body.
        unsafe { sys::msc_append_response_body(self.raw.as_ptr(), data.as_ptr(), data.len()) };
        self.check_intervention();
    }

    /// Phase 4.
    pub fn process_response_body(&mut self) -> Option<Intervention> {
        // SAFETY: `self.raw` is live and exclusively borrowed.
        unsafe { sys::msc_process_response_body(self.raw.as_ptr()) };
        self.check_intervention()
    }

    /// Phase 5.
    pub fn process_logging(&mut self) {
        // SAFETY: `self.raw` is live and exclusively borrowed.
        unsafe { sys::msc_process_logging(self.raw.as_ptr()) };
    }

    /// The error-log lines so far: the callback's lines plus intervention messages (which
    /// the library does not send to the callback; its nginx connector logs them itself).
    pub fn log_lines(&self) -> Vec<String> {
        self.sink.lines.borrow().clone()
    }

    /// Ids of the rules in the error log, deduplicated, in firing order.
    pub fn logged_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = Vec::new();
        for id in self
            .sink
            .lines
            .borrow()
            .iter()
            .filter_map(|l| logline::rule_id(l))
        {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    /// The first intervention of the transaction, if any (only with SecRuleEngine On).
    pub fn intervention(&self) -> Option<&Intervention> {
        self.intervention.as_ref()
    }

    /// Asks the library for a pending intervention; records the first one and logs it.
    fn check_intervention(&mut self) -> Option<Intervention> {
        let mut it = sys::ModSecurityIntervention {
            status: 200,
            pause: 0,
            url: ptr::null_mut(),
            log: ptr::null_mut(),
            disruptive: 0,
        };
        // SAFETY: `self.raw` is live and exclusively borrowed; `it` is initialised as the
        // header's intervention::clean does, and the strings the library puts in it are
        // ours to free (take_string).
        let disruptive = unsafe { sys::msc_intervention(self.raw.as_ptr(), &mut it) };
        let (url, log) = (take_string(it.url), take_string(it.log));
        if disruptive == 0 {
            return None;
        }
        let message = log.unwrap_or_default();
        let found = Intervention {
            status: u16::try_from(it.status).unwrap_or(0),
            rule_id: logline::rule_id(&message).unwrap_or(0),
            phase: logline::phase(&message).unwrap_or(0),
            message: message.clone(),
            url,
        };
        if !message.is_empty() {
            self.sink.lines.borrow_mut().push(message);
        }
        self.intervention.get_or_insert_with(|| found.clone());
        Some(found)
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        // SAFETY: `self.raw` came from msc_new_transaction and is released once; the sink
        // (a field) is dropped only after this returns, so the callback cannot outlive it.
        unsafe { sys::msc_transaction_cleanup(self.raw.as_ptr()) };
    }
}

/// Bytes as a C string, cut at the first NUL (all a C caller could pass).
fn c_bytes(b: &[u8]) -> CString {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    CString::new(&b[..end]).unwrap_or_default()
}
