//! One connection setup's events, for the layers that make connections for a client
//! (the HTTP client's pool, the reqwest layer): its start, and exactly one done.

use std::net::SocketAddr;

use super::{
    ConnectOutcome, ConnectionSetupDone, ConnectionSetupStart, DialId, Fired, NetTrace, Panics,
};

/// A connection setup reported to a trace: [`SetupReport::start`] fires its
/// `ConnectionSetupStart`, [`SetupReport::done`] its `ConnectionSetupDone`; dropped
/// before that, it fires the done as [`ConnectOutcome::Cancelled`].
pub(crate) struct SetupReport {
    trace: NetTrace,
    dial: DialId,
    host: Option<Box<str>>,
    port: Option<u16>,
    done: bool,
}

impl SetupReport {
    /// Fires the start. If a hook panics, the done fires (cancelled: the setup never
    /// starts, its done is owed all the same), then the panic continues.
    pub(crate) fn start(
        trace: NetTrace,
        dial: DialId,
        host: Option<&str>,
        port: Option<u16>,
    ) -> SetupReport {
        let mut report = SetupReport {
            trace,
            dial,
            host: host.map(Into::into),
            port,
            done: false,
        };
        let fired = report
            .trace
            .connection_setup_start(&ConnectionSetupStart { dial, host, port });
        if let Err(panic) = fired {
            let mut panics = Panics::default();
            panics.keep(Err(panic));
            panics.keep(report.done(None, ConnectOutcome::Cancelled));
            panics.resume();
        }
        report
    }

    /// The setup's id.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(crate) fn dial(&self) -> DialId {
        self.dial
    }

    /// Fires the done, once; later calls fire nothing.
    pub(crate) fn done(&mut self, peer: Option<SocketAddr>, outcome: ConnectOutcome<'_>) -> Fired {
        if std::mem::replace(&mut self.done, true) {
            return Ok(());
        }
        self.trace.connection_setup_done(&ConnectionSetupDone {
            dial: self.dial,
            host: self.host.as_deref(),
            port: self.port,
            peer,
            outcome,
        })
    }
}

impl Drop for SetupReport {
    fn drop(&mut self) {
        let mut panics = Panics::default();
        panics.keep(self.done(None, ConnectOutcome::Cancelled));
        panics.resume();
    }
}
