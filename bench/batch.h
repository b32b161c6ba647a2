/* batch.h -- the bench's two standard batches, shared by the C programs
 * (bench/common.lua holds the same for the Lua clients; run.lua checks that
 * the module's body and the C client's are byte for byte the same).
 *   light:     10 text messages "hello" to 100 members (m1..m10, p1..p100)
 *   realistic: the same 10 x 100 with 224 bytes of mixed-script UTF-8 text
 *              (Latin, CJK, Cyrillic, kana, Hangul, emoji, a quote, a newline)
 *              and a JSON ext of 53 bytes on every message */
#ifndef BENCH_BATCH_H
#define BENCH_BATCH_H
#define BATCH_LIGHT_TEXT "hello"
#define BATCH_REALISTIC_TEXT "Round 3 starts in 60 seconds, good luck! 第三轮将在60秒后开始，祝你好运！ Раунд 3 начнётся через 60 секунд. 🎮🏆 \"Arena\" map\nラウンド3 まもなく開始 — 상품:황금열쇠"
#define BATCH_REALISTIC_EXT "{\"kind\":\"announce\",\"round\":3,\"tags\":[\"pvp\",\"ranked\"]}"
#endif
