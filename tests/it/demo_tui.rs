//! `ferrofeed demo`'s live view, checked without a screenshot: the binary runs
//! under a pseudo-terminal of a fixed size, a terminal emulator (vt100) reads
//! what it draws, and the test looks for the connection table and the ladder,
//! then presses `q`.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

const ROWS: u16 = 40;
const COLS: u16 = 120;

/// Kills the child on drop so a failing test leaves no process behind.
struct Running(Box<dyn portable_pty::Child + Send + Sync>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Lines with a BTCUSDT-like price (a decimal number above 1000).
fn price_lines(screen: &str) -> usize {
    screen
        .lines()
        .filter(|l| {
            l.split(|c: char| c.is_whitespace() || c == '│')
                .any(|t| t.contains('.') && t.parse::<f64>().is_ok_and(|p| p > 1000.0))
        })
        .count()
}

/// The connection table (header and an active connection) and the ladder
/// (its symbol, its header and price levels) are on the screen.
fn rendered(screen: &str) -> bool {
    screen.contains("Connections")
        && screen.contains("State")
        && screen.contains("Epoch")
        && screen.lines().any(|l| l.contains("Active") && (l.contains("spot") || l.contains("usdm")))
        && screen.contains("BTCUSDT spot · synced @")
        && screen.contains("Bid qty")
        && screen.contains("Ask qty")
        && price_lines(screen) >= 10
}

#[test]
fn live_view_shows_connections_and_ladder_and_quits_on_q() {
    let pty = native_pty_system()
        .openpty(PtySize { rows: ROWS, cols: COLS, pixel_width: 0, pixel_height: 0 })
        .expect("open a pseudo-terminal");
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_ferrofeed"));
    cmd.args(["demo"]);
    cmd.env("TERM", "xterm-256color");
    cmd.cwd(env!("CARGO_MANIFEST_DIR"));
    let mut child = Running(pty.slave.spawn_command(cmd).expect("spawn ferrofeed demo"));
    drop(pty.slave);

    let parser = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
    let mut reader = pty.master.try_clone_reader().expect("pty reader");
    let (done_tx, done) = mpsc::channel();
    let p = parser.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        // Ends with EOF or EIO once the child has exited and closed the pty.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            p.lock().unwrap_or_else(|e| e.into_inner()).process(&buf[..n]);
        }
        let _ = done_tx.send(());
    });
    let screen = || parser.lock().unwrap_or_else(|e| e.into_inner()).screen().contents();

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = screen();
        if rendered(&s) {
            break;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("the demo exited before drawing ({status:?}); screen:\n{s}");
        }
        assert!(Instant::now() < deadline, "the live view did not show the connections and the ladder; screen:\n{s}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = screen();
    assert!(s.lines().count() <= ROWS as usize);

    let mut keys = pty.master.take_writer().expect("pty writer");
    keys.write_all(b"q").expect("press q");
    keys.flush().expect("flush");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "q did not end the demo; screen:\n{}", screen());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}; screen:\n{}", screen());
    // Everything it wrote has been read: the terminal was restored.
    let _ = done.recv_timeout(Duration::from_secs(5));
    let p = parser.lock().unwrap_or_else(|e| e.into_inner());
    assert!(!p.screen().alternate_screen(), "the alternate screen was left");
    assert!(!p.screen().hide_cursor(), "the cursor is visible again");
    assert!(p.screen().contents().contains("ferrofeed demo:"), "the one-line summary: {}", p.screen().contents());
}

#[test]
fn an_unknown_ladder_symbol_is_a_clear_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
        .args(["demo", "--symbol", "NOPEUSDT", "--duration", "1s"])
        .output()
        .expect("run ferrofeed demo");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown symbol \"NOPEUSDT\"") && err.contains("BTCUSDT"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
