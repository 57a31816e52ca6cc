//! The page's markup, escaped by its type, and the page's skeleton and style. [`Html`] is
//! markup the page carries as it is; it can only be made from a literal written in this crate
//! ([`Html::lit`] takes a `&'static str`), from text ([`Html::text`] escapes it), from a chart's
//! [`Svg`], or from other `Html`. Elements, rows and cells take attribute values and cell
//! contents as text and escape them, unless the content is already `Html`. This module must
//! never offer a way to make `Html` from a string built at run time without escaping it: that
//! is what keeps a step name or an error tail from ever reaching the page as markup.

use std::ops::{Add, AddAssign};

use super::charts::Svg;

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:960px;padding:12px;color:#222}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em}td,th{padding:2px 8px;text-align:right;border-bottom:1px solid #eee}
td:first-child,th:first-child{text-align:left}.scroll{overflow-x:auto}
svg{max-width:100%;height:auto}.chart{overflow-x:auto}.chart svg{min-width:600px}.chart.fit svg{min-width:0;width:100%;max-width:720px}.none{color:#666;font-style:italic}.meta td{text-align:left}
.grid td{text-align:center;font-size:.8em;color:#fff}.legend span{display:inline-block;padding:0 6px;margin-right:4px;color:#fff}
pre{white-space:pre-wrap;font-size:.8em;margin:0}
@media print{body{max-width:none}h2{break-after:avoid}}
";

/// Markup that may go on the page as it is (see the module's comment for what makes one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Html(String);

impl Html {
    /// Markup written by hand in this crate: a literal, never data.
    pub fn lit(markup: &'static str) -> Self {
        Self(markup.to_owned())
    }

    /// Text, escaped.
    pub fn text(text: &str) -> Self {
        let mut out = Self(String::with_capacity(text.len()));
        escape_into(&mut out.0, text);
        out
    }

    /// Text that may break after each underscore, so a column named like `usd_per_done_task`
    /// fits the page instead of scrolling sideways.
    pub fn breakable(text: &str) -> Self {
        // Escaping makes no underscore, so each one here is the text's own.
        Self(Self::text(text).0.replace('_', "_<wbr>"))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<Svg> for Html {
    fn from(svg: Svg) -> Self {
        Self(svg.into_markup())
    }
}

impl Add for Html {
    type Output = Html;

    fn add(mut self, more: Html) -> Html {
        self += more;
        self
    }
}

impl AddAssign for Html {
    fn add_assign(&mut self, more: Html) {
        self.0.push_str(&more.0);
    }
}

impl FromIterator<Html> for Html {
    fn from_iter<I: IntoIterator<Item = Html>>(parts: I) -> Self {
        let mut out = Html::default();
        for part in parts {
            out += part;
        }
        out
    }
}

impl FromIterator<Row> for Html {
    fn from_iter<I: IntoIterator<Item = Row>>(rows: I) -> Self {
        rows.into_iter().map(Html::from).collect()
    }
}

/// Text made safe for HTML, both between tags and in a quoted attribute value.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// `<tag name="value" ...>`, every value escaped.
fn open_tag<'a>(
    tag: &'static str,
    attrs: impl IntoIterator<Item = (&'static str, &'a str)>,
) -> Html {
    let mut out = Html(format!("<{tag}"));
    for (name, value) in attrs {
        out.0.push(' ');
        out.0.push_str(name);
        out.0.push_str("=\"");
        escape_into(&mut out.0, value);
        out.0.push('"');
    }
    out.0.push('>');
    out
}

fn close_tag(tag: &'static str) -> Html {
    Html(format!("</{tag}>"))
}

/// `<tag name="value" ...>body</tag>`, every value escaped.
pub fn element(tag: &'static str, attrs: &[(&'static str, &str)], body: Html) -> Html {
    open_tag(tag, attrs.iter().copied()) + body + close_tag(tag)
}

/// A paragraph.
pub fn p(body: Html) -> Html {
    element("p", &[], body)
}

/// A table cell: text, escaped, unless it is given as [`Html`]; attribute values escaped.
#[must_use]
pub struct Cell {
    attrs: Vec<(&'static str, String)>,
    body: Html,
}

impl Cell {
    pub fn attr(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.attrs.push((name, value.into()));
        self
    }

    fn markup(self, tag: &'static str) -> Html {
        let attrs = self.attrs.iter().map(|(n, v)| (*n, v.as_str()));
        open_tag(tag, attrs) + self.body + close_tag(tag)
    }
}

impl From<Html> for Cell {
    fn from(body: Html) -> Self {
        Self {
            attrs: vec![],
            body,
        }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Html::text(text).into()
    }
}

impl From<&String> for Cell {
    fn from(text: &String) -> Self {
        text.as_str().into()
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        text.as_str().into()
    }
}

impl From<u64> for Cell {
    fn from(n: u64) -> Self {
        n.to_string().into()
    }
}

impl From<usize> for Cell {
    fn from(n: usize) -> Self {
        n.to_string().into()
    }
}

/// A table row of [`Cell`]s, with attribute values escaped.
#[must_use]
pub struct Row {
    tag: &'static str,
    attrs: Vec<(&'static str, String)>,
    cells: Vec<Cell>,
}

impl Row {
    /// A row of data cells (`<td>`).
    pub fn new(cells: impl IntoIterator<Item = Cell>) -> Self {
        Self {
            tag: "td",
            attrs: vec![],
            cells: cells.into_iter().collect(),
        }
    }

    /// A row of header cells (`<th>`).
    pub fn header(cells: impl IntoIterator<Item = Cell>) -> Self {
        Self {
            tag: "th",
            ..Self::new(cells)
        }
    }

    pub fn attr(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.attrs.push((name, value.into()));
        self
    }
}

impl From<Row> for Html {
    fn from(row: Row) -> Self {
        let attrs = row.attrs.iter().map(|(n, v)| (*n, v.as_str()));
        let cells: Html = row.cells.into_iter().map(|c| c.markup(row.tag)).collect();
        open_tag("tr", attrs) + cells + close_tag("tr")
    }
}

/// Wide content, scrolled sideways on a narrow screen rather than shrunk past reading.
pub fn scrolled(body: Html) -> Html {
    element("div", &[("class", "scroll")], body)
}

/// A table with its header row, scrolled sideways on a narrow screen; a column name may break
/// after each underscore.
pub fn table(id: &str, columns: &[&str], rows: impl IntoIterator<Item = Row>) -> Html {
    let head = Row::header(columns.iter().map(|c| Cell::from(Html::breakable(c))));
    let rows: Html = rows.into_iter().collect();
    scrolled(element("table", &[("id", id)], Html::from(head) + rows))
}

/// A chart, scrolled sideways on a narrow screen rather than shrunk past reading.
pub fn chart(svg: Svg) -> Html {
    element("div", &[("class", "chart")], svg.into())
}

/// A chart scaled to the width of the screen, never cut: the steps' bars, whose every state
/// must show on a phone (their step names stay readable at that scale).
pub fn fitted_chart(svg: Svg) -> Html {
    element("div", &[("class", "chart fit")], svg.into())
}

/// The whole page around `body`: inline style, nothing fetched.
pub fn document(title: &str, body: Html) -> String {
    let head = Html::lit("<meta charset=\"utf-8\">")
        + Html::lit("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        + element("title", &[], Html::text(title))
        + element("style", &[], Html::lit(STYLE));
    let page = Html::lit("<!DOCTYPE html>")
        + element(
            "html",
            &[("lang", "en")],
            element("head", &[], head) + element("body", &[], body),
        )
        + Html::lit("\n");
    page.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &str = "<script>&\"'";
    const ESCAPED: &str = "&lt;script&gt;&amp;&quot;&#39;";

    #[test]
    fn data_lands_escaped_in_a_cell_and_in_an_attribute() {
        let row = Row::new([Cell::from(DATA).attr("data-state", DATA)]).attr("data-step", DATA);
        let page = table("t", &["a_b", DATA], [row]).into_string();
        assert_eq!(
            page,
            format!(
                "<div class=\"scroll\"><table id=\"t\"><tr><th>a_<wbr>b</th><th>{ESCAPED}</th></tr>\
                 <tr data-step=\"{ESCAPED}\"><td data-state=\"{ESCAPED}\">{ESCAPED}</td></tr>\
                 </table></div>"
            )
        );
        assert!(!page.contains("<script"));
        let p = element("p", &[("title", DATA)], Html::text(DATA)).into_string();
        assert_eq!(p, format!("<p title=\"{ESCAPED}\">{ESCAPED}</p>"));
    }

    #[test]
    fn markup_goes_in_as_markup_only_when_it_is_html() {
        let cells = [
            Cell::from(Html::lit("<code>a</code>")),
            Cell::from("<code>a</code>"),
            Cell::from(Html::text("x") + Html::lit("<br>")),
        ];
        assert_eq!(
            Html::from(Row::new(cells)).into_string(),
            "<tr><td><code>a</code></td><td>&lt;code&gt;a&lt;/code&gt;</td><td>x<br></td></tr>"
        );
    }

    #[test]
    fn the_page_wraps_the_body_with_the_title_escaped() {
        let page = document("a<b", Html::lit("<h1>x</h1>"));
        assert!(page.starts_with(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta \
             name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>a&lt;b</title><style>\n"
        ));
        assert!(page.ends_with("</style></head><body><h1>x</h1></body></html>\n"));
    }
}
