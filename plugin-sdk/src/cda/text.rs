//! Text: references into the narrative, ED-like elements and the narrative block as plain text.

use super::walk::non_blank;
use super::{MAX_DEPTH, Node, child};

/// The element whose `ID` attribute is `reference` (`#id` or `id`), anywhere in the document
/// of `node`: the target of a `<reference value="#id"/>`.
pub fn resolve_reference<'a, 'input>(
    node: Node<'a, 'input>,
    reference: &str,
) -> Option<Node<'a, 'input>> {
    let id = reference
        .trim()
        .strip_prefix('#')
        .unwrap_or(reference.trim());
    if id.is_empty() {
        return None;
    }
    node.document()
        .descendants()
        .find(|n| n.is_element() && n.attribute("ID") == Some(id))
}

/// The plain text of an ED-like element (`text`, `originalText`, `title`...): when it holds a
/// `<reference value="#id"/>`, the narrative text of the referenced element; else its own text.
/// Whitespace is collapsed and lines joined with a space; `None` when empty.
///
/// ```
/// use passerelle_plugin_sdk::cda::{Document, find_path, text_of};
/// let doc = Document::parse(r##"<ClinicalDocument xmlns="urn:hl7-org:v3">
///   <text><content ID="t1">Tumeur   maligne</content></text>
///   <value><originalText><reference value="#t1"/></originalText></value>
///   <title>  Fiche
///     RCP </title>
/// </ClinicalDocument>"##).unwrap();
/// let original = find_path(doc.root(), "value/originalText").unwrap();
/// assert_eq!(text_of(original).as_deref(), Some("Tumeur maligne"));
/// assert_eq!(text_of(find_path(doc.root(), "title").unwrap()).as_deref(), Some("Fiche RCP"));
/// ```
pub fn text_of(node: Node) -> Option<String> {
    let target = match child(node, "reference").and_then(|r| r.attribute("value")) {
        Some(reference) => resolve_reference(node, reference)?,
        None => node,
    };
    let text = narrative_text(target).lines().collect::<Vec<_>>().join(" ");
    non_blank(&text)
}

/// The CDA narrative block (a section's `text`) as plain text: whitespace collapsed, one line
/// per paragraph, list item (`- ` prefix), table row (non-empty cells joined with ` | `) and
/// `br`; `renderMultiMedia` is dropped. Empty lines are removed.
///
/// ```
/// use passerelle_plugin_sdk::cda::{Document, child, narrative_text};
/// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><text>
///   <table><thead><tr><th colspan="2">Tumeur</th></tr></thead>
///     <tbody><tr><td>Topographie</td><td>C50.2 <content>Sein</content></td><td/></tr></tbody></table>
///   <paragraph>Avis :<br/>chirurgie</paragraph>
///   <list><item>RT</item><item>CT</item></list>
/// </text></ClinicalDocument>"#).unwrap();
/// assert_eq!(
///     narrative_text(child(doc.root(), "text").unwrap()),
///     "Tumeur\nTopographie | C50.2 Sein\nAvis :\nchirurgie\n- RT\n- CT"
/// );
/// ```
pub fn narrative_text(node: Node) -> String {
    let mut w = TextWriter::default();
    w.walk(node, 0);
    w.finish()
}

#[derive(Default)]
struct TextWriter {
    lines: Vec<String>,
    line: String,
    space: bool,
}

impl TextWriter {
    fn push_text(&mut self, text: &str) {
        let mut words = text.split_whitespace().peekable();
        if words.peek().is_none() {
            self.space |= !text.is_empty();
            return;
        }
        if text.starts_with(char::is_whitespace) {
            self.space = true;
        }
        for word in words {
            if self.space && !self.line.is_empty() && !self.line.ends_with(' ') {
                self.line.push(' ');
            }
            self.line.push_str(word);
            self.space = true;
        }
        self.space = text.ends_with(char::is_whitespace);
    }

    fn break_line(&mut self) {
        let line = self.line.trim();
        if !line.is_empty() && line != "-" {
            self.lines.push(line.to_string());
        }
        self.line.clear();
        self.space = false;
    }

    fn walk(&mut self, node: Node, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        for c in node.children() {
            if c.is_text() {
                self.push_text(c.text().unwrap_or(""));
                continue;
            }
            if !c.is_element() {
                continue;
            }
            match c.tag_name().name() {
                "br" => self.break_line(),
                "renderMultiMedia" | "col" | "colgroup" => {}
                "tr" => {
                    self.break_line();
                    let cells: Vec<String> = c
                        .children()
                        .filter(|n| n.is_element() && matches!(n.tag_name().name(), "td" | "th"))
                        .map(|cell| {
                            let mut w = TextWriter::default();
                            w.walk(cell, depth + 1);
                            w.finish().replace('\n', " ")
                        })
                        .filter(|t| !t.is_empty())
                        .collect();
                    self.line.push_str(&cells.join(" | "));
                    self.break_line();
                }
                "item" => {
                    self.break_line();
                    self.line.push_str("- ");
                    self.walk(c, depth + 1);
                    self.break_line();
                }
                "paragraph" | "table" | "thead" | "tbody" | "tfoot" | "list" | "caption"
                | "text" | "section" => {
                    self.break_line();
                    self.walk(c, depth + 1);
                    self.break_line();
                }
                _ => self.walk(c, depth + 1),
            }
        }
    }

    fn finish(mut self) -> String {
        self.break_line();
        self.lines.join("\n")
    }
}
