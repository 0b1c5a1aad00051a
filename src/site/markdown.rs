//! Chart READMEs as HTML for the preview, safely: raw HTML in the Markdown is shown as text,
//! only http(s) and mailto links stay links (a relative link points into the chart, which the
//! preview does not carry, so it becomes its text), and images become links to them, so the
//! page loads nothing from outside.

use pulldown_cmark::{CowStr, Event, LinkType, Options, Parser, Tag, TagEnd, html};

fn is_external(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://") || url.starts_with("mailto:")
}

/// Markdown to an HTML fragment.
pub fn render(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    // Links that cannot stay links are dropped together with their end tag.
    let mut dropped: Vec<bool> = Vec::new();
    let mut in_image: Vec<Option<String>> = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Html(text) | Event::InlineHtml(text) => events.push(Event::Text(text)),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                let keep = is_external(&dest_url) || dest_url.starts_with('#');
                dropped.push(!keep);
                if keep {
                    events.push(Event::Start(Tag::Link {
                        link_type,
                        dest_url,
                        title,
                        id,
                    }));
                }
            }
            Event::End(TagEnd::Link) => {
                if !dropped.pop().unwrap_or(false) {
                    events.push(Event::End(TagEnd::Link));
                }
            }
            Event::Start(Tag::Image { dest_url, .. }) => {
                // An image becomes a link to it (external), or its alt text (relative).
                let external = is_external(&dest_url);
                in_image.push(external.then(|| dest_url.to_string()));
                if external {
                    events.push(Event::Start(Tag::Link {
                        link_type: LinkType::Inline,
                        dest_url: dest_url.clone(),
                        title: CowStr::from(""),
                        id: CowStr::from(""),
                    }));
                    events.push(Event::Text(CowStr::from("🖼 ")));
                }
            }
            Event::End(TagEnd::Image) => {
                if let Some(Some(_)) = in_image.pop() {
                    events.push(Event::End(TagEnd::Link));
                }
            }
            other => events.push(other),
        }
    }
    let mut out = String::new();
    html::push_html(&mut out, events.into_iter());
    // Links open outside the preview.
    out.replace("<a href=\"http", "<a rel=\"noopener\" href=\"http")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_is_text() {
        let out = render("hi <script>alert(1)</script>\n\n<div onclick=x>y</div>\n");
        assert!(!out.contains("<script"), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
        assert!(!out.contains("<div"), "{out}");
    }

    #[test]
    fn links_and_images() {
        let out = render(
            "[a](https://x.test) [b](docs/b.md) ![c](https://x.test/c.png) ![d](d.png) [e](javascript:alert(1))",
        );
        assert!(out.contains("href=\"https://x.test\""), "{out}");
        assert!(!out.contains("docs/b.md"), "{out}");
        assert!(out.contains(">b<") || out.contains(" b "), "{out}");
        assert!(!out.contains("<img"), "{out}");
        assert!(out.contains("href=\"https://x.test/c.png\""), "{out}");
        assert!(!out.contains("javascript:"), "{out}");
    }

    #[test]
    fn tables() {
        let out = render("| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(out.contains("<table>"), "{out}");
    }
}
