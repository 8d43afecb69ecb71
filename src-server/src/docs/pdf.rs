//! Reading a PDF's pages: the parse every uploaded or added document goes through. It uses lopdf and
//! the standard library only, so that the fuzz targets (fuzz/src/lib.rs) compile this very file
//! without the rest of the server.

/// Parses a PDF that must have at least one page; the error says why it is not readable.
pub fn parse(bytes: &[u8]) -> Result<(lopdf::Document, u32), String> {
    if !bytes.starts_with(b"%PDF-") {
        return Err("the file does not start with %PDF-".into());
    }
    let doc = lopdf::Document::load_mem(bytes).map_err(|e| e.to_string())?;
    let pages = u32::try_from(doc.get_pages().len()).unwrap_or(u32::MAX);
    if pages == 0 {
        return Err("the PDF has no pages".into());
    }
    Ok((doc, pages))
}

/// Counts the pages of a PDF, or says why it is not readable.
pub fn count_pages(bytes: &[u8]) -> Result<u32, String> {
    parse(bytes).map(|(_, pages)| pages)
}
