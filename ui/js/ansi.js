// ANSI escape sequences in job logs: SGR ("select graphic rendition") becomes styled
// text; every other escape sequence and control character is dropped.
//
// A style is a frozen object shared by all the text that has it, so a line can
// remember the style it starts with at the cost of one reference.

export const PLAIN = Object.freeze({
  fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false, hidden: false, strike: false,
});

// One alternative per kind of sequence, complete ones first; a sequence cut off by
// the end of the text (a partial line) is dropped too.
const TOKEN = new RegExp([
  "(?:\\x1b\\[|\\x9b)([0-?]*)([ -/]*)([@-~])", // CSI: 1 parameters, 2 intermediates, 3 final byte
  "\\x1b\\][^\\x07\\x1b]*(?:\\x07|\\x1b\\\\)", // OSC ... BEL or ST (titles, hyperlinks)
  "\\x1b[PX^_][^\\x1b]*\\x1b\\\\", // DCS, SOS, PM, APC ... ST
  "(?:\\x1b\\[|\\x9b)[0-?]*[ -/]*$", // CSI cut off
  "\\x1b\\][^\\x07\\x1b]*$", // OSC cut off
  "\\x1b[PX^_][^\\x1b]*$", // DCS & co cut off
  "\\x1b[ -/]*[0-~]", // two-character escapes: ESC ( B, ESC 7, ESC =, ESC c
  "\\x1b[ -/]*", // a lone ESC
  "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1a\\x1c-\\x1f\\x7f]", // other control characters (not \t \n \r)
  "\\r", // carriage return: what follows overwrites the line
].join("|"), "g");

// The xterm 256-colour palette beyond the 16 themed colours, as "#rrggbb".
const CUBE = [0, 95, 135, 175, 215, 255];
const hex = (r, g, b) => `#${[r, g, b].map((v) => Math.max(0, Math.min(255, v | 0)).toString(16).padStart(2, "0")).join("")}`;
function paletteColor(n) {
  if (!Number.isInteger(n) || n < 0 || n > 255) return undefined;
  if (n < 16) return n; // themed by CSS
  if (n < 232) {
    const i = n - 16;
    return hex(CUBE[Math.floor(i / 36)], CUBE[Math.floor(i / 6) % 6], CUBE[i % 6]);
  }
  const v = 8 + (n - 232) * 10;
  return hex(v, v, v);
}

/** An extended colour (38/48) starting at parts[i]; answers [colour, parts consumed]. */
function extended(parts, i) {
  const mode = parts[i + 1];
  if (mode === 5) return [paletteColor(parts[i + 2]), 3];
  if (mode === 2) {
    const [r, g, b] = [parts[i + 2], parts[i + 3], parts[i + 4]];
    if ([r, g, b].every((v) => Number.isInteger(v) && v >= 0 && v <= 255)) return [hex(r, g, b), 5];
    return [undefined, 5];
  }
  return [undefined, 2];
}

/** The colour of a colon form: 38:5:N, 38:2:R:G:B or 38:2:CS:R:G:B. */
function colonColor(sub) {
  if (sub[1] === 5) return paletteColor(sub[2]);
  if (sub[1] === 2) {
    const rgb = sub.length >= 6 ? sub.slice(3, 6) : sub.slice(2, 5);
    if (rgb.length === 3 && rgb.every((v) => Number.isInteger(v) && v >= 0 && v <= 255)) return hex(...rgb);
  }
  return undefined;
}

function basic(s, code) {
  if (code === 0) Object.assign(s, PLAIN);
  else if (code === 1) s.bold = true;
  else if (code === 2) s.dim = true;
  else if (code === 3) s.italic = true;
  else if (code === 4 || code === 21) s.underline = true;
  else if (code === 7) s.inverse = true;
  else if (code === 8) s.hidden = true;
  else if (code === 9) s.strike = true;
  else if (code === 22) s.bold = s.dim = false;
  else if (code === 23) s.italic = false;
  else if (code === 24) s.underline = false;
  else if (code === 27) s.inverse = false;
  else if (code === 28) s.hidden = false;
  else if (code === 29) s.strike = false;
  else if (code >= 30 && code <= 37) s.fg = code - 30;
  else if (code === 39) s.fg = null;
  else if (code >= 40 && code <= 47) s.bg = code - 40;
  else if (code === 49) s.bg = null;
  else if (code >= 90 && code <= 97) s.fg = code - 90 + 8;
  else if (code >= 100 && code <= 107) s.bg = code - 100 + 8;
  // Anything else (blink, fonts, overline...) is ignored.
}

const same = (a, b) => Object.keys(PLAIN).every((k) => a[k] === b[k]);

/** The style after the SGR sequence with parameters `params` (e.g. "1;38;5;208"). */
export function applySgr(style, params) {
  const s = { ...style };
  const groups = params === "" ? [""] : params.split(";");
  const parts = groups.map((p) => (p === "" ? 0 : p.includes(":") ? p : Number(p)));
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (typeof p === "string") {
      const sub = p.split(":").map((x) => (x === "" ? 0 : Number(x)));
      if (sub[0] === 38) s.fg = colonColor(sub) ?? s.fg;
      else if (sub[0] === 48) s.bg = colonColor(sub) ?? s.bg;
      else if (sub[0] === 4) s.underline = sub[1] !== 0;
      else basic(s, sub[0]);
    } else if (p === 38 || p === 48) {
      const [color, used] = extended(parts, i);
      if (color !== undefined) s[p === 38 ? "fg" : "bg"] = color;
      i += used - 1;
    } else {
      basic(s, p);
    }
  }
  if (same(s, PLAIN)) return PLAIN;
  return same(s, style) ? style : Object.freeze(s);
}

/**
 * Splits one line of text into [text, style] segments, starting in `style`.
 * Answers {segments, style}: the style at the end of the line, for the next one.
 */
export function parse(text, style = PLAIN) {
  const segments = [];
  let at = 0;
  let match;
  const push = (chunk) => {
    if (!chunk) return;
    const last = segments[segments.length - 1];
    if (last && last[1] === style) last[0] += chunk;
    else segments.push([chunk, style]);
  };
  // A trailing CR (CRLF line ends, a progress bar's last update) overwrites nothing.
  const line = text.replace(/\r+$/, "");
  TOKEN.lastIndex = 0;
  while ((match = TOKEN.exec(line))) {
    push(line.slice(at, match.index));
    at = TOKEN.lastIndex;
    if (match[0] === "\r") segments.length = 0;
    else if (match[3] === "m" && !match[2] && !/^[<=>?]/.test(match[1])) style = applySgr(style, match[1]);
  }
  push(line.slice(at));
  return { segments, style };
}

/** The style at the end of `text` (cheap when there is no escape at all). */
export function endStyle(text, style = PLAIN) {
  if (text.indexOf("\x1b") < 0 && text.indexOf("\x9b") < 0) return style;
  let match;
  TOKEN.lastIndex = 0;
  while ((match = TOKEN.exec(text))) {
    if (match[3] === "m" && !match[2] && !/^[<=>?]/.test(match[1])) style = applySgr(style, match[1]);
  }
  return style;
}

const cssCache = new WeakMap();

/** The class names and inline style of a style: 16 colours by class, so themes can tune them. */
export function css(style) {
  let out = cssCache.get(style);
  if (out) return out;
  let { fg, bg } = style;
  const classes = [];
  const rules = [];
  if (style.inverse) {
    [fg, bg] = [bg, fg];
    if (fg === null) classes.push("fi");
    if (bg === null) classes.push("bi");
  }
  if (typeof fg === "number") classes.push(`f${fg}`);
  else if (fg) rules.push(`color:${fg}`);
  if (typeof bg === "number") classes.push(`b${bg}`);
  else if (bg) rules.push(`background-color:${bg}`);
  if (style.bold) classes.push("sb");
  if (style.dim) classes.push("sd");
  if (style.italic) classes.push("si");
  if (style.underline) classes.push("su");
  if (style.strike) classes.push("ss");
  if (style.hidden) classes.push("sh");
  out = { className: classes.join(" "), cssText: rules.join(";") };
  cssCache.set(style, out);
  return out;
}

/** Appends `text` to `el` as styled spans; answers the style at its end. */
export function render(el, text, style = PLAIN) {
  const { segments, style: end } = parse(text, style);
  for (const [chunk, s] of segments) {
    if (s === PLAIN) {
      el.append(chunk);
      continue;
    }
    const span = document.createElement("span");
    const { className, cssText } = css(s);
    if (className) span.className = className;
    if (cssText) span.style.cssText = cssText;
    span.textContent = chunk;
    el.append(span);
  }
  return end;
}
