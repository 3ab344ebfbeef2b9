/*
 * tokenizer.h — the FTS5 tokenizer "rsd" for Korean, Chinese, Japanese and Latin text.
 *
 * Text is split into CJK runs (Hangul syllables and jamo, kana, CJK ideographs) and other
 * runs. Other runs are tokenized exactly as `unicode61 remove_diacritics 2` does (case and
 * diacritics folded). A CJK run is indexed as overlapping bigrams, as Lucene's CJK analyzer
 * does, plus its last character as a unigram so that every character starts some token:
 *
 *   document 오션뷰  ->  오션 션뷰 뷰     (one position each)
 *   query    오션뷰  ->  오션 션뷰        (a phrase; matches inside longer runs too)
 *   any      뷰      ->  뷰              (a run of one character is a unigram)
 *
 * In a query the trailing unigram is kept only when another token follows it in the same
 * query string ("오션뷰 디럭스", "오션 deluxe"), because only then must the document's run
 * end there too; otherwise `오션` would not find 오션뷰. Hence:
 *   - a CJK term of two or more characters matches anywhere inside a run (스파 finds
 *     프리미엄스파);
 *   - a one-character term without `*` matches only a run that ends with it or consists of
 *     it (션 finds 오션 but not 오션뷰); with `*` it matches the character anywhere in a run
 *     (뷰* finds 오션뷰 and 뷰티, 션* finds 오션뷰). Search layers should therefore append
 *     `*` to one-character CJK terms.
 * Byte offsets are exact spans in the whole input, so highlight() and snippet() work. One
 * limit, in SQLite 3.40's highlight(): two separate matches whose bytes overlap (`오션 션뷰`,
 * `오션뷰 뷰*`) repeat text in its output; a caller that must render such queries merges
 * the spans from xInst itself. Bytes that are not well-formed UTF-8 separate tokens and
 * never appear in one.
 */
#ifndef RSD_TOKENIZER_H
#define RSD_TOKENIZER_H

#include <sqlite3.h>

#include "rsd.h"

/* The name tables use: `CREATE VIRTUAL TABLE t USING fts5(name, tokenize='rsd')`. */
#define TOKENIZER_NAME "rsd"

/*
 * Registers the tokenizer TOKENIZER_NAME with FTS5 on db, and the ranking function
 * rsd_rank(table, weight of column 0, weight of column 1, ...): BM25's term-frequency part
 * with a fixed length norm and no IDF, higher is better. Unlike bm25() a row's score
 * depends only on the row and the query, so it does not move when other rows are added.
 * Registration is per connection: call it on every connection that reads or writes a table using
 * it, before the first statement that touches such a table. Calling it again replaces the
 * registration. The tokenizer accepts no arguments. Returns RSD_OK, or RSD_EIO when db lacks FTS5
 * or SQLite refuses the registration.
 */
int tokenizer_register(sqlite3 *db);

#endif
