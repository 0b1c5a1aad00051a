//! Icons and screenshots: formats the console shows and sizes KubeSphere can store.

use std::collections::BTreeMap;
use std::path::Path;

use crate::catalog::{Asset, Catalog, Target};
use crate::diagnostics::{Code, Diagnostic, Diagnostics, Pos};

/// The console's icon limits (reference §9).
const MAX_ICON_BYTES: usize = 512 * 1024;
const MAX_ICON_PIXELS: u32 = 512;
/// Screenshots are stored like packages: one ConfigMap each.
const MAX_SCREENSHOT_BYTES: usize = 1_048_576;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Jpeg,
    Svg,
}

/// The format by content, not by file name.
pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(ImageFormat::Png);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(ImageFormat::Jpeg);
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    head.contains("<svg").then_some(ImageFormat::Svg)
}

/// Width and height in pixels, where the format says.
pub fn dimensions(bytes: &[u8], format: ImageFormat) -> Option<(u32, u32)> {
    match format {
        ImageFormat::Png => {
            let be = |i: usize| {
                bytes
                    .get(i..i + 4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            };
            (bytes.get(12..16) == Some(b"IHDR")).then(|| Some((be(16)?, be(20)?)))?
        }
        ImageFormat::Jpeg => jpeg_dimensions(bytes),
        ImageFormat::Svg => svg_dimensions(&String::from_utf8_lossy(bytes)),
    }
}

fn jpeg_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    while i + 9 < bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        // SOF markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let h = u16::from_be_bytes([bytes[i + 5], bytes[i + 6]]) as u32;
            let w = u16::from_be_bytes([bytes[i + 7], bytes[i + 8]]) as u32;
            return Some((w, h));
        }
        i += 2 + len;
    }
    None
}

fn svg_dimensions(text: &str) -> Option<(u32, u32)> {
    let start = text.find("<svg")?;
    let tag = &text[start..start + text[start..].find('>')?];
    let attr = |name: &str| {
        let i = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let value = &tag[i..i + tag[i..].find('"')?];
        Some(value.to_string())
    };
    let px = |v: String| v.trim_end_matches("px").trim().parse::<f64>().ok();
    if let (Some(w), Some(h)) = (attr("width").and_then(px), attr("height").and_then(px)) {
        return Some((w.ceil() as u32, h.ceil() as u32));
    }
    let view_box: Vec<f64> = attr("viewBox")?
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    (view_box.len() == 4).then(|| (view_box[2].ceil() as u32, view_box[3].ceil() as u32))
}

pub fn check(catalog: &Catalog, diags: &mut Diagnostics) {
    for app in &catalog.apps {
        if let (Some(icon), Some(spec)) = (&app.icon, &app.spec.icon) {
            let err = |m: String| {
                Diagnostic::error(Code::InvalidImage, m)
                    .in_file(&app.file)
                    .at(spec.pos)
            };
            match check_image(icon, MAX_ICON_BYTES, Some(MAX_ICON_PIXELS)) {
                Ok(_) => {}
                Err(why) => diags.push(err(format!("icon {}: {why}", icon.file.display())).hint(
                    "the console shows png, jpg or svg icons of at most 512 KiB and 512×512 pixels",
                )),
            }
        }
        for shot in &app.screenshots {
            if let Err(why) = check_image(shot, MAX_SCREENSHOT_BYTES, None) {
                diags.push(
                    Diagnostic::error(Code::InvalidImage, format!("screenshot {}: {why}", shot.file.display()))
                        .in_file(&app.file)
                        .at(shot.entry.file.pos)
                        .hint("screenshots are png, jpg or svg of at most 1 MiB (they are stored in a ConfigMap)"),
                );
            }
        }
    }
}

/// Screenshot IDs app.yaml names: each the target's form of attachment ID, and each the ID of
/// one screenshot only — attachment IDs are store-wide (a ConfigMap name in the storage
/// namespace, or an S3 key), so no two screenshots of any apps may share one.
pub fn check_attachment_ids(catalog: &Catalog, diags: &mut Diagnostics) {
    let v3 = catalog.settings.target() == Target::KubesphereV3;
    // ID → where it is first named (app.yaml, position, file).
    let mut named: BTreeMap<&str, (&Path, Pos, &str)> = BTreeMap::new();
    for app in &catalog.apps {
        for entry in &app.spec.screenshots {
            let Some(id) = &entry.id else { continue };
            let valid = if v3 {
                crate::names::attachment_id_v3(&id.value)
            } else {
                crate::names::attachment_id(&id.value)
            };
            if let Err(why) = valid {
                let hint = if v3 {
                    "on KubeSphere 3.x an attachment ID is `att-` and letters or digits, as in spec.attachments of the HelmApplication; or leave `id` out for one derived from the image"
                } else {
                    "on KubeSphere 4.x an attachment ID is `<field>-att-<5 lowercase letters or digits>`, as in spec.attachments of the Application (`pitrix export` writes them); or leave `id` out for one derived from the image"
                };
                diags.push(
                    Diagnostic::error(
                        Code::InvalidAttachmentId,
                        format!(
                            "screenshot {}: `{}` is not an attachment ID: it {why}",
                            entry.file.value, id.value
                        ),
                    )
                    .in_file(&app.file)
                    .at(id.pos)
                    .hint(hint),
                );
                continue;
            }
            match named.get(id.value.as_str()) {
                Some((file, pos, shot)) => diags.push(
                    Diagnostic::error(
                        Code::DuplicateAttachmentId,
                        format!(
                            "screenshot {}: attachment ID `{}` is already that of {shot} ({}:{})",
                            entry.file.value,
                            id.value,
                            file.display(),
                            pos.line
                        ),
                    )
                    .in_file(&app.file)
                    .at(id.pos)
                    .hint("one attachment ID stores one image: give each screenshot its own, or leave `id` out for one derived from the image"),
                ),
                None => {
                    named.insert(&id.value, (&app.file, id.pos, &entry.file.value));
                }
            }
        }
    }
    // An ID derived from an image may not be one that is named either.
    for app in &catalog.apps {
        for shot in app.screenshots.iter().filter(|s| s.entry.id.is_none()) {
            let id = if v3 {
                crate::compile::v3::attachment_key(
                    catalog.settings.catalog.name.get_ref(),
                    &shot.bytes,
                )
            } else {
                crate::compile::attachment_id(&app.name, &shot.bytes)
            };
            if let Some((file, pos, other)) = named.get(id.as_str()) {
                diags.push(
                    Diagnostic::error(
                        Code::DuplicateAttachmentId,
                        format!(
                            "screenshot {}: the attachment ID derived from it, `{id}`, is the one {other} names ({}:{})",
                            shot.entry.file.value,
                            file.display(),
                            pos.line
                        ),
                    )
                    .in_file(&app.file)
                    .at(shot.entry.file.pos)
                    .hint("name another `id` for one of them"),
                );
            }
        }
    }
}

fn check_image(
    asset: &Asset,
    max_bytes: usize,
    max_pixels: Option<u32>,
) -> Result<ImageFormat, String> {
    let format = sniff(&asset.bytes).ok_or("is not a png, jpg or svg image")?;
    if asset.bytes.len() > max_bytes {
        return Err(format!(
            "is {} bytes; at most {max_bytes} are allowed",
            asset.bytes.len()
        ));
    }
    if let Some(max) = max_pixels {
        match dimensions(&asset.bytes, format) {
            Some((w, h)) if w > max || h > max => {
                return Err(format!(
                    "is {w}×{h} pixels; at most {max}×{max} are allowed"
                ));
            }
            Some(_) => {}
            None if format == ImageFormat::Svg => {}
            None => return Err("is a damaged image (no size found)".into()),
        }
    }
    Ok(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_by_format() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend(600u32.to_be_bytes());
        png.extend(32u32.to_be_bytes());
        assert_eq!(sniff(&png), Some(ImageFormat::Png));
        assert_eq!(dimensions(&png, ImageFormat::Png), Some((600, 32)));
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 48"><rect/></svg>"#;
        assert_eq!(dimensions(svg, ImageFormat::Svg), Some((64, 48)));
        let svg = br#"<svg width="1024px" height="10" xmlns="http://www.w3.org/2000/svg"></svg>"#;
        assert_eq!(dimensions(svg, ImageFormat::Svg), Some((1024, 10)));
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8, 0, 100, 0, 200, 3, 0, 0, 0, 0,
        ];
        assert_eq!(dimensions(&jpeg, ImageFormat::Jpeg), Some((200, 100)));
        assert_eq!(sniff(b"GIF89a"), None);
    }
}
