"""Progress: a live line with ETA on a terminal, else optionally a plain line every 10 % (logs, pipes)."""
import sys
import time


def format_duration(seconds):
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class Progress:
    """``update(done, text)`` redraws a status line with ETA on a terminal. Elsewhere (nohup logs, CI)
    it prints nothing, or with ``plain_lines`` a line per 10 % (loops without log lines of their own)."""

    def __init__(self, total, label, unit="step", stream=None, min_interval=0.5, plain_lines=False):
        self.total, self.label, self.unit = total, label, unit
        self.stream = stream or sys.stdout
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self.min_interval, self.plain_lines = min_interval, plain_lines
        self._last_draw, self._drawn, self._next_plain = 0.0, False, 0.1

    def eta(self, done):
        return (time.perf_counter() - self.start) / done * (self.total - done) if done > 0 else float("nan")

    def update(self, done, text=""):
        if not self.live:
            self._plain_line(done, text)
            return
        now = time.perf_counter()
        if now - self._last_draw < self.min_interval and done < self.total:
            return
        self._last_draw = now
        eta = self.eta(done)
        eta_text = format_duration(eta) if eta == eta else "?"
        line = f"\r{self.label} {done}/{self.total} {self.unit}s {text} ETA {eta_text}"
        self.stream.write(line[:160].ljust(80))
        self.stream.flush()
        self._drawn = True

    def _plain_line(self, done, text):
        if not self.plain_lines or done >= self.total or done / self.total < self._next_plain:
            return
        while self._next_plain <= done / self.total:
            self._next_plain += 0.1
        print(f"{self.label}: {done}/{self.total} {self.unit}s, {text}, ETA {format_duration(self.eta(done))}",
              file=self.stream, flush=True)

    def clear(self):
        """Erase the live line before a regular log line is printed."""
        if self.live and self._drawn:
            self.stream.write("\r" + " " * 160 + "\r")
            self.stream.flush()
            self._drawn = False
