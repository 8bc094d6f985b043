//! The live dashboard `sim run` shows on a terminal: pairing latency, throughput, DSMC claim
//! failures, timeouts, errors and thresholds as the run goes, with keys to pause, change the
//! arrival rate and stop.
//!
//! Built like oha's and tokio-console's TUIs: the engine publishes
//! [`MetricsSnapshot`]s on a `watch` channel and never waits for anyone; [`run`] reads the
//! latest one, redraws at a steady [`FRAME_EVERY`], and sends [`EngineCommand`]s back with
//! `try_send` so a full queue costs a notice, not a stall. The pieces:
//!
//! - [`state`]: the view model and UI state, pure data derived from snapshots and keys;
//! - [`view`]: `draw(frame, &ViewModel)`, pure rendering (tests use ratatui's `TestBackend`);
//! - [`terminal`]: raw mode and the alternate screen, restored by a `Drop` guard, a panic hook,
//!   and [`terminal::restore`] for callers about to exit.
//!
//! `q` (or Ctrl-C, SIGTERM, SIGHUP, or the caller cancelling the shutdown token) stops arrivals;
//! the dashboard stays up while players in flight drain and returns once the engine's final
//! snapshot ([`Phase::Finished`]) arrives, so the caller writes the reports on a restored
//! terminal. Must not know how the engine runs a scenario or where reports go.

pub mod state;
pub mod terminal;
pub mod view;

use std::future::pending;
use std::io;
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use futures_util::StreamExt as _;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

pub use self::state::{Header, Key, UiState, ViewModel};
use self::terminal::{TerminalGuard, Tui};
use crate::engine::EngineCommand;
use crate::metrics::{MetricsSnapshot, Phase};

/// How often the dashboard redraws (8 frames a second; snapshots come 4 times a second).
pub const FRAME_EVERY: Duration = Duration::from_millis(125);

/// How the dashboard ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The run reached the end of its schedule and finished.
    Finished,
    /// A stop was asked for (a key, a signal, the shutdown token) and the run finished draining.
    Stopped,
    /// The engine went away without a final snapshot: it failed, and its own error says why.
    EngineGone,
}

/// Why the dashboard could not run; the terminal is restored either way.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("terminal: {0}")]
    Terminal(#[from] io::Error),
}

/// Shows the dashboard until the run finishes or the engine goes away.
///
/// `snapshots` and `commands` come from [`crate::engine::Engine::snapshots`] and
/// [`crate::engine::Engine::commands`]; `shutdown` is the token the engine runs with: the
/// dashboard cancels it on SIGTERM/SIGHUP and shows a stop when someone else cancels it.
/// Spawn this on its own task so drawing never delays the engine.
pub async fn run(
    header: Header,
    snapshots: watch::Receiver<MetricsSnapshot>,
    commands: mpsc::Sender<EngineCommand>,
    shutdown: CancellationToken,
) -> Result<Exit, DashboardError> {
    let mut guard = TerminalGuard::enter()?;
    let result = drive(guard.terminal(), header, snapshots, commands, shutdown).await;
    drop(guard);
    result
}

async fn drive(
    terminal: &mut Tui,
    header: Header,
    mut snapshots: watch::Receiver<MetricsSnapshot>,
    commands: mpsc::Sender<EngineCommand>,
    shutdown: CancellationToken,
) -> Result<Exit, DashboardError> {
    let mut ui = UiState::new();
    let mut snap = snapshots.borrow_and_update().clone();
    ui.observe(&snap);
    let mut events = EventStream::new();
    let mut keys_open = true;
    let mut signals = Signals::new();
    let mut frame = tokio::time::interval(FRAME_EVERY);
    frame.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = frame.tick() => ui.frame(),
            changed = snapshots.changed() => {
                if changed.is_err() {
                    // The engine is gone; its last snapshot says whether it finished.
                    let last = snapshots.borrow().phase;
                    return Ok(match last {
                        Phase::Finished if ui.stopping => Exit::Stopped,
                        Phase::Finished => Exit::Finished,
                        _ => Exit::EngineGone,
                    });
                }
                // Clone out at once: holding the borrow would make the engine's send wait.
                snap = snapshots.borrow_and_update().clone();
                ui.observe(&snap);
                if snap.phase == Phase::Finished {
                    draw(terminal, &header, &snap, &ui)?;
                    return Ok(if ui.stopping { Exit::Stopped } else { Exit::Finished });
                }
                // Drawn on the next frame: the redraw rate stays steady.
                continue;
            }
            event = events.next(), if keys_open => match event {
                Some(Ok(Event::Key(key))) => {
                    let Some(key) = key_of(key) else { continue };
                    if key == Key::Redraw {
                        terminal.clear()?;
                    }
                    if let Some(command) = ui.on_key(key, &snap, &header) {
                        send(&commands, command, &shutdown, &mut ui);
                    }
                }
                Some(Ok(Event::Resize(..))) => terminal.autoresize()?,
                Some(Ok(_)) => continue,
                // No more keys (stdin closed): keep showing the run; signals still stop it.
                Some(Err(_)) | None => keys_open = false,
            },
            () = shutdown.cancelled(), if !ui.stopping => {
                ui.stop_requested("interrupted");
                // Whoever cancelled may have printed on the screen: repaint all of it.
                terminal.clear()?;
            }
            why = signals.recv() => {
                ui.stop_requested(why);
                shutdown.cancel();
            }
        }
        draw(terminal, &header, &snap, &ui)?;
    }
}

fn draw(
    terminal: &mut Tui,
    header: &Header,
    snap: &MetricsSnapshot,
    ui: &UiState,
) -> io::Result<()> {
    let vm = ViewModel::new(header, snap, ui);
    terminal.draw(|frame| view::draw(frame, &vm))?;
    Ok(())
}

/// Sends without waiting. A stop that cannot be queued cancels the shutdown token instead,
/// which the engine treats the same way.
fn send(
    commands: &mpsc::Sender<EngineCommand>,
    command: EngineCommand,
    shutdown: &CancellationToken,
    ui: &mut UiState,
) {
    match commands.try_send(command) {
        Ok(()) => {}
        Err(_) if command == EngineCommand::Stop => shutdown.cancel(),
        Err(TrySendError::Full(_)) => ui.notify("the engine is busy; press the key again"),
        Err(TrySendError::Closed(_)) => ui.notify("the engine no longer takes commands"),
    }
}

/// The dashboard's meaning of a key press, if it has one.
pub fn key_of(event: KeyEvent) -> Option<Key> {
    if event.kind != KeyEventKind::Press {
        return None;
    }
    let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
    match event.code {
        KeyCode::Char('c') if ctrl => Some(Key::Quit),
        KeyCode::Char('l') if ctrl => Some(Key::Redraw),
        _ if ctrl => None,
        KeyCode::Char('q' | 'Q') => Some(Key::Quit),
        KeyCode::Char('p' | 'P' | ' ') => Some(Key::Pause),
        KeyCode::Char('+' | '=') => Some(Key::Faster),
        KeyCode::Char('-' | '_') => Some(Key::Slower),
        KeyCode::Char('?' | 'h') => Some(Key::Help),
        KeyCode::Esc => Some(Key::Close),
        _ => None,
    }
}

/// SIGTERM and SIGHUP while the dashboard owns the terminal (raw mode turns Ctrl-C into a key).
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                hup: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal's name; pending forever when none can arrive.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
                if let Some(s) = signal {
                    if s.recv().await.is_some() {
                        return;
                    }
                }
                pending::<()>().await;
            }
            let Signals { term, hup } = self;
            tokio::select! {
                () = next(term) => "terminated",
                () = next(hup) => "hang-up",
            }
        }
        #[cfg(not(unix))]
        pending::<&'static str>().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn keys() {
        let none = KeyModifiers::NONE;
        assert_eq!(key_of(press(KeyCode::Char('q'), none)), Some(Key::Quit));
        assert_eq!(
            key_of(press(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Key::Quit)
        );
        assert_eq!(key_of(press(KeyCode::Char('c'), none)), None);
        assert_eq!(key_of(press(KeyCode::Char('p'), none)), Some(Key::Pause));
        assert_eq!(
            key_of(press(KeyCode::Char('+'), KeyModifiers::SHIFT)),
            Some(Key::Faster)
        );
        assert_eq!(key_of(press(KeyCode::Char('-'), none)), Some(Key::Slower));
        assert_eq!(
            key_of(press(KeyCode::Char('?'), KeyModifiers::SHIFT)),
            Some(Key::Help)
        );
        assert_eq!(key_of(press(KeyCode::Esc, none)), Some(Key::Close));
        assert_eq!(
            key_of(press(KeyCode::Char('l'), KeyModifiers::CONTROL)),
            Some(Key::Redraw)
        );
        let mut release = press(KeyCode::Char('q'), none);
        release.kind = KeyEventKind::Release;
        assert_eq!(key_of(release), None);
    }

    #[tokio::test]
    async fn a_stop_that_cannot_be_queued_cancels_the_token() {
        let (tx, _rx) = mpsc::channel(1);
        let token = CancellationToken::new();
        let mut ui = UiState::new();
        send(&tx, EngineCommand::Pause, &token, &mut ui);
        send(&tx, EngineCommand::Resume, &token, &mut ui);
        assert!(ui.notice().is_some_and(|n| n.contains("busy")));
        assert!(!token.is_cancelled());
        send(&tx, EngineCommand::Stop, &token, &mut ui);
        assert!(token.is_cancelled());
    }
}
