"""The typing lane (tui.typing_lane) on a real pty: what it writes, what it refuses, and that a
close stops it between two writes of the generation thread. The lane in the app, with Textual's
frames between its writes, is tests/test_terminal.py's (tmux)."""

from __future__ import annotations

import os
import re
import select
import threading
from functools import partial

import pytest

from tui.typing_lane import TypingLane, Wrapping
from tui.widgets.stream_tail import _split

AFTER, FINISH = "▌\x1b[0m", "\x1b[24;1H"


@pytest.fixture
def pty():
    """(the terminal's side, the program's side) of a real pseudo-terminal."""
    terminal, program = os.openpty()
    yield terminal, program
    os.close(terminal)
    os.close(program)


def _read(fd: int) -> bytes:
    """All the pty has for its reader now."""
    got = b""
    while select.select([fd], [], [], 0.05)[0]:
        got += os.read(fd, 65536)
    return got


def _lane(program: int) -> TypingLane:
    return TypingLane(lambda data: os.write(program, data.encode()) > 0)


def test_a_lane_writes_printable_text_that_fits_and_refuses_the_rest(pty) -> None:
    terminal, program = pty
    lane = _lane(program)
    assert not lane.write("early")  # not open yet
    lane.open("", 5, 2, 10, "\x1b[1m", AFTER, FINISH)
    assert lane.write("abc")
    # the cursor to row 3, column 6 (counted from 1), the style, the text, the rest
    assert _read(terminal).decode() == "\x1b[3;6H\x1b[1mabc▌\x1b[0m\x1b[24;1H"
    assert lane.write(" de")  # the next goes after it
    assert _read(terminal).decode() == "\x1b[3;9H\x1b[1m de▌\x1b[0m\x1b[24;1H"
    for refused in ("fghi!", "x\n", "é", "\x1b[31m", "\t"):  # too long for the 4 cells left; not printable ASCII
        assert not lane.write(refused)
    assert lane.write("fghi")  # exactly the room
    assert _read(terminal).decode().startswith("\x1b[3;12H")
    assert not lane.write("j")
    assert lane.take().text == "abc defghi"
    assert lane.take().text == ""
    assert lane.batches == 3


def test_a_closed_lane_writes_nothing_and_keeps_what_was_written_for_take(pty) -> None:
    terminal, program = pty
    lane = _lane(program)
    lane.open("\x1b[?2026h", 0, 0, 20, "", "", "\x1b[?2026l")
    assert lane.write("one")
    assert _read(terminal).decode() == "\x1b[?2026h\x1b[1;1Hone\x1b[?2026l"  # a synchronized update
    lane.close()
    assert not lane.is_open and not lane.write("two")
    assert _read(terminal) == b""
    assert lane.take().text == "one"
    lane.open("", 0, 0, 0, "", "", "")  # no room: nothing opens
    assert not lane.is_open


def test_a_gone_terminal_closes_the_lane() -> None:
    lane = TypingLane(lambda data: False)
    lane.open("", 0, 0, 20, "", "", "")
    assert not lane.write("lost")
    assert not lane.is_open and lane.take().text == ""


def test_close_stops_the_writing_thread_and_no_write_splits_another(pty) -> None:
    """A thread writes batches while this one writes long sequences under the lane's lock (as the
    driver does) and then closes the lane: every byte on the terminal belongs to one whole
    write, none of the lane's comes after the close, and take() has exactly the batches written."""
    terminal, program = pty
    lane = _lane(program)
    lane.open("", 0, 0, 10**9, "<", ">", "")
    got = bytearray()
    reading = threading.Event()

    def read() -> None:
        while not reading.is_set() or select.select([terminal], [], [], 0.2)[0]:
            if select.select([terminal], [], [], 0.05)[0]:
                got.extend(os.read(terminal, 65536))

    reader = threading.Thread(target=read)
    reader.start()
    written: list[bool] = []
    stop = threading.Event()

    def generate() -> None:
        while not stop.is_set():
            written.append(lane.write("xy"))

    writer = threading.Thread(target=generate)
    writer.start()
    frame = "[" + "f" * 3000 + "]"
    for _ in range(20):
        with lane.lock:
            os.write(program, frame.encode())
    lane.close()
    with lane.lock:
        os.write(program, b"CLOSED")
    stop.set()
    writer.join()
    reading.set()
    reader.join()
    text = got.decode()
    assert text.endswith("CLOSED")
    assert "<" not in text.split("CLOSED")[1]  # nothing of the lane's after the close
    pieces = re.findall(r"\x1b\[1;\d+H<xy>|\[f{3000}\]|CLOSED", text)
    assert "".join(pieces) == text  # every write whole
    assert written.count(True) == text.count("<xy>") > 0
    assert written[written.index(False):] == [False] * written.count(False)  # none after the first no
    assert lane.take().text == "xy" * written.count(True)


def test_no_batch_is_drawn_before_one_handed_to_the_ui(pty) -> None:
    """A batch the lane refused goes to the UI; the ones after it must not be drawn before it:
    the lane takes none until the UI has drawn every batch handed to it and opened it again."""
    terminal, program = pty
    lane = _lane(program)
    lane.open("", 0, 0, 50, "", "", "")
    assert lane.write("a")
    newline = lane.hand_over()  # (a newline: the UI's)
    assert not lane.write("b")  # after the newline: the UI's too
    b = lane.hand_over()
    lane.drawn(newline)
    lane.open("", 0, 1, 50, "", "", "")  # opened after drawing the newline, with "b" still on its way
    assert not lane.write("c")
    c = lane.hand_over()
    lane.drawn(b)
    lane.drawn(c)
    lane.open("", 1, 1, 50, "", "", "")
    assert lane.write("d")
    assert _read(terminal).decode() == "\x1b[1;1Ha\x1b[2;2Hd"
    assert lane.take().text == "ad"


def test_a_batch_that_wraps_moves_the_line_end_down_as_the_widget_wraps_it(pty) -> None:
    """With wrapping, a batch that does not fit goes on to the next line as the tail's own
    wrapping (Textual's) puts it: only the cells that change on the line it leaves (its end, or
    blanks where a word that moved down and the cursor were), then the next line; never past
    the lines it was given, nor beyond a line's room."""
    terminal, program = pty
    lane = _lane(program)
    wrapping = Wrapping(partial(_split, 20), "The quick bro", 2, (20, 20, 20), "\x1b[0m", ("\x1b[2m", "\x1b[0m"))
    lane.open("", 2 + 13, 3, 20 - 13 - 1, "\x1b[1m", AFTER, FINISH, 1, wrapping)
    assert not lane.write("wn foxy")  # one full line of 20 cells: the cursor would start the next (the UI's)
    assert not lane.write("wn fox jumps over the lazy dog, and then some more")  # four lines: three left
    assert _read(terminal) == b""
    assert lane.write("wn fox jumps")  # the word's end on this line, the next word on the next
    assert _read(terminal).decode() == "\x1b[4;16H\x1b[1mwn fox\x1b[0m\x1b[5;3H\x1b[1mjumps▌\x1b[0m\x1b[24;1H"
    assert lane.write(" over the la")  # in place, on the new line
    assert _read(terminal).decode() == "\x1b[5;8H\x1b[1m over the la▌\x1b[0m\x1b[24;1H"
    assert lane.write("zier")  # "la" moves down with it: blanks where it and the cursor were
    assert _read(terminal).decode() == "\x1b[5;17H\x1b[2m    \x1b[0m\x1b[6;3H\x1b[1mlazier▌\x1b[0m\x1b[24;1H"
    assert not lane.write(" and a tail that wraps")  # no line left below
    assert lane.write(" cat")
    assert lane.take() == ("wn fox jumps over the lazier cat",
                           ("The quick brown fox", "jumps over the", "lazier cat"))
    assert lane.take() == ("", ())
    assert lane.wraps == 2 and lane.batches == 4
    # a next line partly covered (a notification over its end): a word that would reach under
    # it stays the UI's
    lane.open("", 2 + 13, 3, 6, "\x1b[1m", AFTER, FINISH, 1, wrapping._replace(rooms=(20, 5)))
    assert not lane.write("wn fox jumps")  # "jumps" and the cursor: 6 cells
    assert lane.write("wn fox jump")
    assert lane.take().lines == ("The quick brown fox", "jump")


def test_the_split_is_the_tails_wrapping() -> None:
    """What the lane is given to wrap with wraps as the tail does (Textual's Content.wrap): the
    lines before the last lose their trailing spaces, a word longer than the width is folded."""
    assert _split(10, "one two three ") == ["one two", "three "]
    assert _split(10, "abcdefghijklmn op") == ["abcdefghij", "klmn op"]


def test_a_batch_with_newlines_goes_on_to_the_next_lines(pty) -> None:
    """A newline starts the next line of the room, as the tail shows a line of source: a blank
    line between paragraphs is left blank, the cursor goes after the last text; a batch whose
    lines do not fit the lines left is the UI's."""
    terminal, program = pty
    lane = _lane(program)
    wrapping = Wrapping(partial(_split, 20), "One", 0, (20, 20, 20, 20), "\x1b[0m", ("\x1b[2m", "\x1b[0m"))
    lane.open("", 3, 0, 16, "\x1b[1m", AFTER, FINISH, 1, wrapping)
    assert not lane.write("x\n\ny\n\nz")  # five lines, four left
    assert lane.write(".\n\nTwo")  # the cursor's cell becomes the ".", the blank line is left alone
    assert _read(terminal).decode() == "\x1b[1;4H\x1b[1m.\x1b[0m\x1b[3;1H\x1b[1mTwo▌\x1b[0m\x1b[24;1H"
    assert lane.write("\n")  # the cursor alone moves down: a blank where it was
    assert _read(terminal).decode() == "\x1b[3;4H\x1b[2m \x1b[0m\x1b[4;1H\x1b[1m▌\x1b[0m\x1b[24;1H"
    assert lane.write("and")  # in place on the new, empty line
    assert _read(terminal).decode() == "\x1b[4;1H\x1b[1mand▌\x1b[0m\x1b[24;1H"
    assert not lane.write("\n")  # no line left
    assert lane.take() == (".\n\nTwo\nand", ("One.", "", "Two", "and"))
