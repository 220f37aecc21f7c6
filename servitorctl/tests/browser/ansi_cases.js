// Run in the page by tests/browser.rs (execute_async): checks ui/js/ansi.js on the
// SGR cases a log meets, and answers the list of failures (empty when all pass).
const done = arguments[arguments.length - 1];
import("./js/ansi.js").then((ansi) => {
  const failures = [];
  // Renders `text` (one line, starting in `style`) and describes each piece.
  const pieces = (text, style) => {
    const el = document.createElement("div");
    ansi.render(el, text, style);
    return [...el.childNodes].map((node) => node.nodeType === Node.TEXT_NODE
      ? { text: node.textContent, cls: "", color: "", bg: "" }
      : { text: node.textContent, cls: node.className, color: node.style.color, bg: node.style.backgroundColor });
  };
  const expect = (name, text, wanted, style) => {
    const got = JSON.stringify(pieces(text, style));
    const want = JSON.stringify(wanted.map(([t, cls = "", color = "", bg = ""]) => ({ text: t, cls, color, bg })));
    if (got !== want) failures.push(`${name}: got ${got}, want ${want}`);
  };
  const E = "\x1b";
  expect("16 colours and reset", `${E}[31mred${E}[0m plain`, [["red", "f1"], [" plain"]]);
  expect("empty reset", `${E}[32mg${E}[mp`, [["g", "f2"], ["p"]]);
  expect("bright fg, bold, underline", `${E}[1;4;92mx`, [["x", "f10 sb su"]]);
  expect("background and bright background", `${E}[44mb${E}[103my`, [["b", "b4"], ["y", "b11"]]);
  expect("256 colours: cube", `${E}[38;5;208mo`, [["o", "", "rgb(255, 135, 0)"]]);
  expect("256 colours: grey", `${E}[38;5;244mg`, [["g", "", "rgb(128, 128, 128)"]]);
  expect("256 colours: low ones are themed", `${E}[38;5;9mr`, [["r", "f9"]]);
  expect("24-bit", `${E}[38;2;10;20;30mt${E}[48;2;1;2;3mu`, [["t", "", "rgb(10, 20, 30)"], ["u", "", "rgb(10, 20, 30)", "rgb(1, 2, 3)"]]);
  expect("24-bit, colon form", `${E}[38:2::1:2:3mc`, [["c", "", "rgb(1, 2, 3)"]]);
  expect("dim, italic, 22 and 23", `${E}[2;3mdi${E}[22mi${E}[23mn`, [["di", "sd si"], ["i", "si"], ["n"]]);
  expect("strike and default colours", `${E}[9;31;42ms${E}[39;49;29mn`, [["s", "f1 b2 ss"], ["n"]]);
  expect("inverse", `${E}[7mi`, [["i", "fi bi"]]);
  expect("other escapes are dropped", `a${E}[2Kb${E}]0;title\x07c${E}(Bd${E}[?25le${E}]8;;http://x${E}\\f${E}7g`, [["abcdefg"]]);
  expect("private SGR-like sequences are not SGR", `${E}[>4;2mx`, [["x"]]);
  expect("a cut-off escape is dropped", `abc${E}[3`, [["abc"]]);
  expect("controls are dropped, tabs kept", "a\x07b\x08c\td", [["abc\td"]]);
  expect("carriage return overwrites", "50%\r100%", [["100%"]]);
  expect("CRLF", "line\r", [["line"]]);
  const { style } = ansi.parse(`${E}[1;33mwarn`);
  expect("styles carry over to the next line", "still", [["still", "f3 sb"]], style);
  if (ansi.endStyle("plain", style) !== style) failures.push("endStyle of plain text keeps the style object");
  if (ansi.parse(`${E}[0m`).style !== ansi.PLAIN) failures.push("a reset answers PLAIN itself");
  done(failures);
}, (error) => done([`cannot import ansi.js: ${error}`]));
