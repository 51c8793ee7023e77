//! Shared by the table-driven tests: reading `*.cases` files.

/// One `### header` block of a cases file.
pub struct Block {
    /// The file it came from.
    pub file: String,
    /// The text after `### ` on the first line.
    pub header: String,
    /// The lines after the header.
    pub body: String,
}

/// Every `### ` block of every `*.cases` file in `dir` (relative to the crate), files sorted.
pub fn case_blocks(dir: &str) -> Vec<Block> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cases"))
        .collect();
    files.sort();
    let mut blocks = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for block in text.split("\n### ").skip(1) {
            let (header, body) = block.split_once('\n').unwrap_or((block, ""));
            blocks.push(Block {
                file: file.clone(),
                header: header.trim().to_owned(),
                body: body.to_owned(),
            });
        }
    }
    blocks
}
