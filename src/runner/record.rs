//! The observations and transcript of one case, filled in from concurrent tasks: what the
//! session, the client under test and the mock upstreams saw, read once the case is judged.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use crate::embedded::upstream::UpstreamLog;
use misdirect_core::observe::{
    ConnectionRecord, Event, Exchange, ExchangeOutcome, Observations, Transcript,
};

/// Most transcript events a case keeps: far beyond a scenario's steps, so that only a run gone
/// wrong (a client under test in a loop, say) reaches it.
const MAX_EVENTS: usize = 2_000;

/// Observations and transcript of one case, filled in from concurrent tasks.
pub(super) struct Record {
    started: Instant,
    state: Mutex<(Observations, Transcript)>,
    /// Events not kept past [`MAX_EVENTS`].
    dropped: std::sync::atomic::AtomicUsize,
    /// Where the mock upstreams of a gateway case log, and the prefix of this case's request IDs.
    upstream_log: Mutex<Option<(UpstreamLog, String)>>,
}

impl Record {
    pub(super) fn new(started: Instant) -> Self {
        Self {
            started,
            state: Mutex::new((Observations::default(), Transcript::default())),
            dropped: std::sync::atomic::AtomicUsize::new(0),
            upstream_log: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Observations, Transcript)> {
        // Only pushes happen under the lock, so the data stays consistent after a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn event(&self, connection: &str, what: String) {
        let at = self.started.elapsed();
        let events = &mut self.lock().1.events;
        if events.len() >= MAX_EVENTS {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        events.push(Event {
            at,
            connection: connection.to_owned(),
            what,
        });
    }

    pub(super) fn connection(&self, record: ConnectionRecord) {
        self.lock().0.connections.push(record);
    }

    pub(super) fn exchange(&self, exchange: Exchange) {
        self.lock().0.exchanges.push(exchange);
    }

    pub(super) fn origin_frames(
        &self,
        connection: &str,
        frames: Vec<misdirect_core::wire::h2::OriginFrame>,
    ) {
        if let Some(record) = self
            .lock()
            .0
            .connections
            .iter_mut()
            .rev()
            .find(|record| record.name == connection)
        {
            record.origin_frames = frames;
        }
    }

    pub(super) fn served(&self, requests: Vec<misdirect_core::observe::ServedRequest>) {
        self.lock().0.served = requests;
    }

    pub(super) fn command(&self, outcome: misdirect_core::observe::CommandOutcome) {
        self.lock().0.command = Some(outcome);
    }

    pub(super) fn attach_upstream_log(&self, log: UpstreamLog, prefix: String) {
        *self
            .upstream_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((log, prefix));
    }

    /// The last HTTP/3 alternative advertised in a response on `connection`.
    pub(super) fn h3_alternative(&self, connection: &str) -> Option<(String, u16)> {
        self.lock()
            .0
            .exchanges
            .iter()
            .rev()
            .filter(|exchange| exchange.connection == connection)
            .find_map(|exchange| match &exchange.outcome {
                ExchangeOutcome::Response(response) => response.h3_alternative(),
                _ => None,
            })
    }

    pub(super) fn take(&self) -> (Observations, Transcript) {
        let (mut observations, mut transcript) = std::mem::take(&mut *self.lock());
        let dropped = self.dropped.load(std::sync::atomic::Ordering::Relaxed);
        if dropped > 0 {
            transcript.events.push(Event {
                at: self.started.elapsed(),
                connection: "case".to_owned(),
                what: format!("… {dropped} more events not kept (a case keeps {MAX_EVENTS})"),
            });
        }
        if let Some((log, prefix)) = &*self
            .upstream_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            observations.upstream_requests = log.requests(prefix);
        }
        (observations, transcript)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transcript_keeps_a_bounded_number_of_events() {
        let record = Record::new(Instant::now());
        for index in 0..MAX_EVENTS + 5 {
            record.event("main", format!("event {index}"));
        }
        let (_, transcript) = record.take();
        assert_eq!(transcript.events.len(), MAX_EVENTS + 1);
        let last = transcript.events.last().map(|event| event.what.as_str());
        assert_eq!(last, Some("… 5 more events not kept (a case keeps 2000)"));
    }
}
