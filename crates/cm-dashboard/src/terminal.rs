//! The terminal: raw mode and the alternate screen in, and always back out
//! again, on return, on error, on panic and on SIGTERM/SIGHUP/SIGINT.

use std::io::{self, Stdout};

use crossterm::event::{self, Event, KeyEventKind};
use crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use ratatui::backend::{CrosstermBackend, TestBackend};

use crate::app::{App, Msg};
use crate::inbox::Sender;
use crate::{theme, ui};

/// The live terminal; dropping it restores the user's terminal.
pub struct Terminal {
    inner: ratatui::Terminal<CrosstermBackend<Stdout>>,
    /// `NO_COLOR` is set: frames go out without colors ([`theme::monochrome`]).
    monochrome: bool,
}

impl Terminal {
    /// Enters raw mode and the alternate screen, and installs a panic hook that
    /// leaves them before the panic message is printed.
    pub fn enter() -> io::Result<Self> {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            default_hook(info);
        }));
        enable_raw_mode()?;
        let mut stdout = io::stdout();
        if let Err(e) = execute!(stdout, EnterAlternateScreen, cursor::Hide) {
            restore();
            return Err(e);
        }
        let inner = ratatui::Terminal::new(CrosstermBackend::new(stdout)).inspect_err(|_| restore())?;
        Ok(Self { inner, monochrome: theme::no_color_requested() })
    }

    /// The terminal's size, columns and rows.
    pub fn size(&self) -> io::Result<(u16, u16)> {
        self.inner.size().map(|s| (s.width, s.height))
    }

    /// Draws the app; ratatui resizes its buffers when the terminal size changed.
    pub fn draw(&mut self, app: &App) -> io::Result<()> {
        let monochrome = self.monochrome;
        self.inner
            .draw(|f| {
                ui::render(app, f);
                if monochrome {
                    theme::monochrome(f.buffer_mut());
                }
            })
            .map(|_| ())
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the terminal back as the shell expects it. Safe to call twice.
fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
}

/// Forwards key presses and resizes as messages.
pub fn spawn_input_reader(tx: Sender) {
    std::thread::spawn(move || loop {
        let msg = match event::read() {
            Ok(Event::Key(key)) if key.kind != KeyEventKind::Release => Msg::Key(key),
            Ok(Event::Resize(cols, rows)) => Msg::Resize { cols, rows },
            Ok(_) => continue,
            // stdin closed or unreadable: nothing more will come from the user.
            Err(_) => Msg::Terminate,
        };
        let stop = msg == Msg::Terminate;
        if tx.send(msg).is_err() || stop {
            return;
        }
    });
}

/// Turns SIGTERM, SIGHUP and SIGINT into a clean quit.
pub fn spawn_signal_listener(tx: Sender) -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT])?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            let _ = tx.send(Msg::Terminate);
        }
    });
    Ok(())
}

/// Renders the app as the terminal shows it into a `cols` x `rows` buffer
/// and returns it as plain text, one line per row with trailing spaces trimmed.
pub fn render_to_text(app: &App, cols: u16, rows: u16) -> String {
    text_of(app, cols, rows, ui::Chrome::Interactive)
}

/// The screen as `--once` prints it: no key bar, there being no keys to press.
pub fn print_to_text(app: &App, cols: u16, rows: u16) -> String {
    text_of(app, cols, rows, ui::Chrome::Printed)
}

fn text_of(app: &App, cols: u16, rows: u16, chrome: ui::Chrome) -> String {
    let mut term = ratatui::Terminal::new(TestBackend::new(cols, rows)).expect("a test backend never fails");
    term.draw(|f| ui::render_as(app, f, chrome)).expect("drawing into memory never fails");
    buffer_text(term.backend().buffer())
}

/// A buffer's symbols as text, rows joined with newlines.
pub fn buffer_text(buf: &ratatui::buffer::Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
