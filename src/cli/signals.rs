//! Ctrl-C (SIGINT) and SIGTERM during `pipe run`: the first stops starting
//! stages, stops the running ones (one `scancel` for cluster jobs) and
//! publishes nothing partial; the run then exits 128 + the signal (130 or
//! 143). A second signal exits at once, with 128 + that signal (two sent
//! together may reach two threads and be taken in either order). SIGTERM
//! matters because a batch system or a shell's background job sends it,
//! not SIGINT.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

/// The first signal received (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    if SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst).is_err() {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + signal) };
    }
}

/// Installs the handlers; a thread turns the first signal into `cancel`.
pub fn install(cancel: &Arc<AtomicBool>) {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only touches an atomic and calls _exit; the
        // sigaction struct is zeroed and then filled in before use.
        let installed = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            // Each handler blocks the other signal while it runs: two signals
            // pending at once are then handled in order (SIGINT, then SIGTERM)
            // instead of the later one nesting inside the earlier and being
            // taken for the first.
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaddset(&mut action.sa_mask, libc::SIGINT);
            libc::sigaddset(&mut action.sa_mask, libc::SIGTERM);
            libc::sigaction(signal, &action, std::ptr::null_mut()) == 0
        };
        if !installed {
            eprintln!("warning: cannot handle signal {signal}: it ends the run at once");
        }
    }
    let flag = Arc::clone(cancel);
    std::thread::spawn(move || {
        loop {
            let signal = SIGNAL.load(Ordering::SeqCst);
            if signal != 0 {
                flag.store(true, Ordering::SeqCst);
                let name = if signal == libc::SIGTERM { "SIGTERM" } else { "Ctrl-C" };
                eprintln!("\ninterrupted ({name}): stopping running stages ({name} again to quit at once)");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

/// The exit code of an interrupted run: 128 + the signal (130 for Ctrl-C).
pub fn interrupted_exit_code() -> i32 {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => super::EXIT_INTERRUPTED,
        signal => 128 + signal,
    }
}
