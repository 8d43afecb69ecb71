//! A JPEG's header, read up to its first scan: whether a browser's decoder shows it as a PDF reader
//! does. Browsers turn a photo by its EXIF orientation and pdf.js does not, so a turned photo is left
//! to pdf.js; and the number of colour components must be what the PDF says (1 for grey, 3 for
//! RGB), which also leaves out CMYK and Adobe's inverted JPEGs.

/// Whether `jpeg` is a JPEG of `components` components that no browser would turn.
pub fn plain(jpeg: &[u8], components: u8) -> bool {
    if !jpeg.starts_with(&[0xff, 0xd8]) {
        return false;
    }
    let mut i = 2;
    let mut frame = None;
    // Segments up to the first scan: marker, 2-byte length, body.
    while i + 4 <= jpeg.len() {
        if jpeg[i] != 0xff {
            return false;
        }
        let marker = jpeg[i + 1];
        if marker == 0xff {
            i += 1; // fill byte
            continue;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        let Some(body) = jpeg.get(i + 4..i + 2 + len).filter(|_| len >= 2) else { return false };
        match marker {
            // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): the frame header.
            0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) => frame = body.get(5).copied(),
            0xe1 if body.starts_with(b"Exif\0\0") && !upright(&body[6..]) => return false,
            0xda => return frame == Some(components),
            _ => {}
        }
        i += 2 + len;
    }
    false
}

/// Whether a TIFF block (EXIF) has no orientation, or orientation 1.
fn upright(tiff: &[u8]) -> bool {
    let big = match tiff.get(..2) {
        Some(b"MM") => true,
        Some(b"II") => false,
        _ => return false,
    };
    let u16_at = |at: usize| {
        tiff.get(at..at + 2)
            .map(|b| if big { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) })
    };
    let u32_at = |at: usize| {
        tiff.get(at..at + 4).map(|b| {
            let b = [b[0], b[1], b[2], b[3]];
            if big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
        })
    };
    let Some(ifd) = u32_at(4).map(|o| o as usize) else { return false };
    let Some(count) = u16_at(ifd) else { return false };
    for k in 0..usize::from(count) {
        let entry = ifd + 2 + 12 * k;
        match u16_at(entry) {
            Some(0x0112) => return u16_at(entry + 8) == Some(1),
            Some(_) => {}
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG header: SOI, optional APP1, SOF0 with `n` components, SOS.
    fn jpeg(app1: Option<&[u8]>, n: u8) -> Vec<u8> {
        let mut j = vec![0xff, 0xd8];
        if let Some(a) = app1 {
            j.extend_from_slice(&[0xff, 0xe1]);
            j.extend_from_slice(&((a.len() + 2) as u16).to_be_bytes());
            j.extend_from_slice(a);
        }
        let sof = [8, 0, 10, 0, 10, n];
        j.extend_from_slice(&[0xff, 0xc0, 0, (sof.len() + 2) as u8]);
        j.extend_from_slice(&sof);
        j.extend_from_slice(&[0xff, 0xda, 0, 2, 1, 2, 3, 0xff, 0xd9]);
        j
    }

    fn exif(orientation: u16) -> Vec<u8> {
        let mut e = b"Exif\0\0MM\0\x2a\0\0\0\x08".to_vec();
        e.extend_from_slice(&[0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1]);
        e.extend_from_slice(&orientation.to_be_bytes());
        e.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        e
    }

    #[test]
    fn a_turned_photo_or_the_wrong_colours_are_not_plain() {
        assert!(plain(&jpeg(None, 3), 3));
        assert!(plain(&jpeg(None, 1), 1));
        assert!(!plain(&jpeg(None, 3), 1), "RGB in a grey image");
        assert!(!plain(&jpeg(None, 4), 3), "CMYK");
        assert!(plain(&jpeg(Some(&exif(1)), 3), 3));
        assert!(!plain(&jpeg(Some(&exif(6)), 3), 3), "EXIF orientation 6");
        assert!(!plain(&[0xff, 0xd8, 0xff, 0xc0, 0, 0x40], 3), "truncated");
        assert!(!plain(b"not a jpeg", 3));
    }
}
