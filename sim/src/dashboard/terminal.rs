//! The terminal while the dashboard owns it: raw mode and the alternate screen on
//! [`TerminalGuard::enter`], and back to normal however the dashboard ends — dropped guard,
//! panic on any thread (a hook installed once), or a caller that is about to exit the process
//! and calls [`restore`] first.
//!
//! Restoring is idempotent and guarded by one flag, so the panic hook, the guard and an
//! explicit call never undo each other's work twice. Log lines written through [`HeldStderr`]
//! while the dashboard owns the screen are held back and printed once it is restored, so a
//! warning from an embedded server never scribbles over the frame. Must not know what is drawn.

use std::io::{self, Stdout, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, Once};

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

/// Whether this process has the terminal in raw mode on the alternate screen.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static PANIC_HOOK: Once = Once::new();
/// Log output held while the dashboard is up, and how much did not fit.
static HELD: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static HELD_DROPPED: AtomicU64 = AtomicU64::new(0);
/// Log output held at most; the rest is counted and reported.
pub const HELD_MAX: usize = 1 << 20;

/// The terminal the dashboard draws on.
pub type Tui = Terminal<CrosstermBackend<Stdout>>;

/// Owns the terminal in dashboard mode; dropping it restores the terminal.
pub struct TerminalGuard {
    terminal: Tui,
}

impl TerminalGuard {
    /// Raw mode, alternate screen, hidden cursor; and a panic hook that undoes them.
    pub fn enter() -> io::Result<TerminalGuard> {
        install_panic_hook();
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let entered = execute!(io::stdout(), EnterAlternateScreen, Hide)
            .and_then(|()| Terminal::new(CrosstermBackend::new(io::stdout())));
        match entered {
            Ok(mut terminal) => {
                terminal.clear()?;
                Ok(TerminalGuard { terminal })
            }
            Err(err) => {
                restore();
                Err(err)
            }
        }
    }

    pub fn terminal(&mut self) -> &mut Tui {
        &mut self.terminal
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves the alternate screen and raw mode, shows the cursor. Does nothing when the dashboard
/// does not own the terminal, so it is safe to call from anywhere (before `process::exit`, in a
/// signal path) and more than once.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        // Best effort: there is nothing better to do with an error while restoring.
        let _ = disable_raw_mode();
        let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
        release_held();
    }
}

/// Prints the log output held while the dashboard was up.
fn release_held() {
    let held = match HELD.lock() {
        Ok(mut held) => std::mem::take(&mut *held),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    let mut err = io::stderr().lock();
    let _ = err.write_all(&held);
    let dropped = HELD_DROPPED.swap(0, Ordering::SeqCst);
    if dropped > 0 {
        let _ = writeln!(
            err,
            "sim: {dropped} bytes of log output were dropped while the dashboard was up"
        );
    }
    let _ = err.flush();
}

/// A log writer (`tracing_subscriber::fmt().with_writer(HeldStderr)`): stderr, except while
/// the dashboard owns the terminal, when lines are held and printed after it is restored.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeldStderr;

impl io::Write for HeldStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !is_active() {
            return io::stderr().write(buf);
        }
        let mut held = match HELD.lock() {
            Ok(held) => held,
            Err(poisoned) => poisoned.into_inner(),
        };
        if held.len() + buf.len() <= HELD_MAX {
            held.extend_from_slice(buf);
        } else {
            HELD_DROPPED.fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if is_active() {
            Ok(())
        } else {
            io::stderr().flush()
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for HeldStderr {
    type Writer = HeldStderr;

    fn make_writer(&'a self) -> Self::Writer {
        HeldStderr
    }
}

/// Whether the dashboard has the terminal right now.
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::SeqCst)
}

fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Restore first, so the panic message lands on a usable screen.
            restore();
            previous(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn log_lines_are_held_while_the_dashboard_is_up() {
        // Pretend the dashboard is up without touching the real terminal.
        ACTIVE.store(true, Ordering::SeqCst);
        let mut w = HeldStderr;
        assert_eq!(w.write(b"held line\n").ok(), Some(10));
        let too_big = vec![b'x'; HELD_MAX + 1];
        assert_eq!(w.write(&too_big).ok(), Some(too_big.len()));
        let held = HELD.lock().map(|h| h.clone()).unwrap_or_default();
        assert!(held.ends_with(b"held line\n"));
        assert!(HELD_DROPPED.load(Ordering::SeqCst) >= too_big.len() as u64);
        ACTIVE.store(false, Ordering::SeqCst);
        release_held();
        assert!(HELD.lock().map(|h| h.is_empty()).unwrap_or(false));
        assert_eq!(HELD_DROPPED.load(Ordering::SeqCst), 0);
        assert!(!is_active());
    }
}
