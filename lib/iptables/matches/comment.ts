// --comment: a text of up to 255 bytes that only labels the rule.
import * as v from '../../validate.js'
import { cstr, ext, type ExtFamily, str } from '../fields.js'
import { EXT } from '../layout.js'
import type { Match } from '../model.js'

const COMMENT_SIZE = 256 // XT_MAX_COMMENT_LEN

export const comment: ExtFamily<Match> = {
  spec: () => EXT.comment,
  plan(at, field, m) {
    v.only(at, field, m, ['match', 'comment'])
    const text = str(at, `${field}.comment`, m.comment, COMMENT_SIZE, true)
    return ext('comment', EXT.comment, (b, o) => void b.write(text, o, 'utf8'))
  },
  decode: (b, d) => ({ match: 'comment', comment: cstr(b, d, d + COMMENT_SIZE, 'utf8') }),
}
