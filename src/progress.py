"""Progress reporting: a live line with ETA on a terminal, nothing extra otherwise."""
import sys
import time


def format_duration(seconds):
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class Progress:
    """``update(done, text)`` redraws one status line (terminal only) with rate and ETA.

    When the stream is not a terminal (nohup logs, CI) nothing is drawn, so logs hold only
    the regular log lines.
    """

    def __init__(self, total, label, unit="step", stream=None, min_interval=0.5):
        self.total = total
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stdout
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self.min_interval = min_interval
        self._last_draw = 0.0
        self._drawn = False

    def eta(self, done):
        elapsed = time.perf_counter() - self.start
        if done <= 0:
            return float("nan")
        return elapsed / done * (self.total - done)

    def update(self, done, text=""):
        if not self.live:
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

    def clear(self):
        """Erase the live line before a regular log line is printed."""
        if self.live and self._drawn:
            self.stream.write("\r" + " " * 160 + "\r")
            self.stream.flush()
            self._drawn = False
