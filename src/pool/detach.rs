//! A dial's events, passed to the trace of the request that started it until that
//! request ends; then its pending ends fire as detached, and nothing more reaches it.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::resolve::ResolveError;
use crate::trace::{
    ConnectDone, ConnectOutcome, ConnectionSetupDone, DialId, DnsDone, Fired, NetTrace, Panics,
};

/// The switch between one dial and one request's trace.
#[derive(Clone)]
pub(crate) struct Detach {
    inner: Arc<Mutex<Gate>>,
}

struct Gate {
    /// `None` once the request has ended.
    target: Option<NetTrace>,
    /// The lookup started and not done: its host and the addresses received so far.
    dns: Option<(DialId, String, Vec<IpAddr>)>,
    /// Attempts started and not done.
    attempts: Vec<(DialId, SocketAddr, usize)>,
    #[cfg(feature = "tls")]
    tls: Option<(DialId, String, SocketAddr)>,
    setup: Option<(DialId, Option<String>, Option<u16>)>,
}

impl Detach {
    /// A switch that passes events to `target`.
    pub(crate) fn new(target: NetTrace) -> Detach {
        Detach {
            inner: Arc::new(Mutex::new(Gate {
                target: Some(target),
                dns: None,
                attempts: Vec::new(),
                #[cfg(feature = "tls")]
                tls: None,
                setup: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Gate> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `fire` with the request's trace, if it has not ended, after `note` has updated
    /// what is pending. The lock is held while the hooks run, so an end racing with the
    /// dial's task can never let an event through after it.
    fn pass(&self, note: impl FnOnce(&mut Gate), fire: impl FnOnce(&NetTrace) -> Fired) {
        let mut gate = self.lock();
        if gate.target.is_none() {
            return;
        }
        note(&mut gate);
        let fired = fire(gate.target.as_ref().expect("checked above"));
        drop(gate);
        if let Err(panic) = fired {
            std::panic::resume_unwind(panic);
        }
    }

    /// The trace the dial reports to: every hook passes through this switch.
    pub(crate) fn trace(&self) -> NetTrace {
        let g = |d: &Detach| d.clone();
        let (a, b, c, d, e, f, h) = (
            g(self),
            g(self),
            g(self),
            g(self),
            g(self),
            g(self),
            g(self),
        );
        let trace = NetTrace::new()
            .on_connection_setup_start(move |ev| {
                a.pass(
                    |s| s.setup = Some((ev.dial, ev.host.map(str::to_owned), ev.port)),
                    |t| t.connection_setup_start(ev),
                )
            })
            .on_dns_start(move |ev| {
                b.pass(
                    |s| s.dns = Some((ev.dial, ev.host.to_owned(), Vec::new())),
                    |t| t.dns_start(ev),
                )
            })
            .on_dns_answer(move |ev| {
                c.pass(
                    |s| {
                        if let Some((_, _, addrs)) = &mut s.dns {
                            addrs.extend_from_slice(ev.addrs);
                        }
                    },
                    |t| t.dns_answer(ev),
                )
            })
            .on_dns_done(move |ev| d.pass(|s| s.dns = None, |t| t.dns_done(ev)))
            .on_connect_start(move |ev| {
                e.pass(
                    |s| s.attempts.push((ev.dial, ev.addr, ev.attempt)),
                    |t| t.connect_start(ev),
                )
            })
            .on_connect_done(move |ev| {
                f.pass(
                    |s| s.attempts.retain(|a| a.2 != ev.attempt || a.0 != ev.dial),
                    |t| t.connect_done(ev),
                )
            })
            .on_connection_setup_done(move |ev| {
                h.pass(|s| s.setup = None, |t| t.connection_setup_done(ev))
            });
        #[cfg(feature = "tls")]
        let trace = {
            let (i, j) = (g(self), g(self));
            trace
                .on_tls_handshake_start(move |ev| {
                    i.pass(
                        |s| s.tls = Some((ev.dial, ev.server_name.to_owned(), ev.addr)),
                        |t| t.tls_start(ev),
                    )
                })
                .on_tls_handshake_done(move |ev| j.pass(|s| s.tls = None, |t| t.tls_done(ev)))
        };
        trace
    }

    /// The request ended: every pending end fires — attempts as
    /// [`ConnectOutcome::Detached`], the lookup and the handshake with a cancelled error,
    /// the setup as detached — and nothing more reaches the request's trace. The first
    /// panic of a hook is returned in `panics`.
    pub(crate) fn detach(&self, panics: &mut Panics) {
        let mut gate = self.lock();
        let Some(target) = gate.target.take() else {
            return;
        };
        if let Some((dial, host, addrs)) = gate.dns.take() {
            let error = ResolveError::cancelled(&host);
            panics.keep(target.dns_done(&DnsDone {
                dial,
                host: &host,
                addrs: &addrs,
                coalesced: false,
                error: Some(&error),
            }));
        }
        for (dial, addr, attempt) in std::mem::take(&mut gate.attempts) {
            panics.keep(target.connect_done(&ConnectDone {
                dial,
                addr,
                attempt,
                outcome: ConnectOutcome::Detached,
            }));
        }
        #[cfg(feature = "tls")]
        if let Some((dial, server_name, addr)) = gate.tls.take() {
            let error = std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "tls handshake detached: the request ended",
            );
            panics.keep(target.tls_done(&crate::TlsHandshakeDone {
                dial,
                server_name: &server_name,
                addr,
                version: None,
                alpn: None,
                cipher: None,
                error: Some(&error),
            }));
        }
        if let Some((dial, host, port)) = gate.setup.take() {
            panics.keep(target.connection_setup_done(&ConnectionSetupDone {
                dial,
                host: host.as_deref(),
                port,
                peer: None,
                outcome: ConnectOutcome::Detached,
            }));
        }
    }
}
