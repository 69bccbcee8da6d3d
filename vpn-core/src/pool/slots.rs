//! [`Slots`]: which offsets of a pool are taken, as a bitmap with a summary hierarchy.
//!
//! Level 0 has one bit per slot (set = taken or reserved). Each higher level has one bit
//! per word of the level below, set when that word is full. The top level is one word.
//! Finding the lowest free slot walks down from the top: one word per level, so at most
//! 4 words for the 2^20-slot limit. Taking and giving back touch one word per level
//! at most.

/// The taken/free state of `len` slots, some of them reserved for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Slots {
    /// `levels[0]` = slots; `levels[k + 1]` bit i = `levels[k][i]` is full. Bits past
    /// the end of a level are set, so they are never found free.
    levels: Vec<Vec<u64>>,
    len: u32,
    reserved: u32,
    in_use: u32,
}

impl Slots {
    /// `len` free slots, except `reserved` ones, which are never handed out.
    pub(super) fn new(len: u32, reserved: impl IntoIterator<Item = u32>) -> Slots {
        let mut levels = Vec::new();
        let mut bits = len as usize;
        loop {
            let words = bits.div_ceil(64).max(1);
            let mut level = vec![0u64; words];
            let used_in_last = bits % 64;
            if let Some(last) = level.last_mut() {
                if bits == 0 {
                    *last = u64::MAX;
                } else if used_in_last != 0 {
                    *last = u64::MAX << used_in_last;
                }
            }
            levels.push(level);
            if words == 1 {
                break;
            }
            bits = words;
        }
        let mut slots = Slots {
            levels,
            len,
            reserved: 0,
            in_use: 0,
        };
        for slot in reserved {
            if slot < len && slots.set(slot) {
                slots.reserved += 1;
            }
        }
        slots
    }

    pub(super) fn len(&self) -> u32 {
        self.len
    }

    /// Slots that can be handed out (all but the reserved ones).
    pub(super) fn capacity(&self) -> u32 {
        self.len - self.reserved
    }

    pub(super) fn in_use(&self) -> u32 {
        self.in_use
    }

    /// Takes the lowest free slot.
    pub(super) fn take_lowest(&mut self) -> Option<u32> {
        let mut index = 0usize;
        for level in self.levels.iter().rev() {
            let word = *level.get(index)?;
            if word == u64::MAX {
                return None;
            }
            index = index * 64 + word.trailing_ones() as usize;
        }
        let slot = u32::try_from(index).ok().filter(|s| *s < self.len)?;
        self.set(slot).then(|| {
            self.in_use += 1;
            slot
        })
    }

    /// Takes `slot`; false if it was taken already. The caller keeps reserved slots away.
    pub(super) fn take(&mut self, slot: u32) -> bool {
        let taken = slot < self.len && self.set(slot);
        if taken {
            self.in_use += 1;
        }
        taken
    }

    /// Frees `slot`; false if it was free. The caller keeps reserved slots away.
    pub(super) fn give_back(&mut self, slot: u32) -> bool {
        let freed = slot < self.len && self.clear(slot);
        if freed {
            self.in_use -= 1;
        }
        freed
    }

    /// True if `slot` is taken or reserved.
    pub(super) fn is_taken(&self, slot: u32) -> bool {
        let (word, bit) = split(slot as usize);
        self.levels
            .first()
            .and_then(|level| level.get(word))
            .is_some_and(|w| w & bit != 0)
    }

    /// Every taken or reserved slot, in increasing order.
    pub(super) fn taken(&self) -> impl Iterator<Item = u32> + '_ {
        let len = self.len;
        self.levels
            .first()
            .into_iter()
            .flatten()
            .enumerate()
            .flat_map(|(index, &word)| {
                let mut rest = word;
                std::iter::from_fn(move || {
                    (rest != 0).then(|| {
                        let bit = rest.trailing_zeros() as usize;
                        rest &= rest - 1;
                        index * 64 + bit
                    })
                })
            })
            .map_while(move |slot| u32::try_from(slot).ok().filter(|s| *s < len))
    }

    /// Sets the bit of `slot`, propagating "word full" upwards; false if already set.
    fn set(&mut self, slot: u32) -> bool {
        let mut index = slot as usize;
        for (depth, level) in self.levels.iter_mut().enumerate() {
            let (word_index, bit) = split(index);
            let Some(word) = level.get_mut(word_index) else {
                return false;
            };
            if *word & bit != 0 {
                // At depth 0 the slot was taken; above, the summary was already full.
                return depth != 0;
            }
            *word |= bit;
            if *word != u64::MAX {
                return true;
            }
            index = word_index;
        }
        true
    }

    /// Clears the bit of `slot`, propagating "word not full" upwards; false if clear.
    fn clear(&mut self, slot: u32) -> bool {
        let mut index = slot as usize;
        for (depth, level) in self.levels.iter_mut().enumerate() {
            let (word_index, bit) = split(index);
            let Some(word) = level.get_mut(word_index) else {
                return false;
            };
            if *word & bit == 0 {
                return depth != 0;
            }
            let was_full = *word == u64::MAX;
            *word &= !bit;
            if !was_full {
                return true;
            }
            index = word_index;
        }
        true
    }
}

fn split(index: usize) -> (usize, u64) {
    (index / 64, 1u64 << (index % 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_slot_is_taken_first_and_reused_after_release() {
        let mut slots = Slots::new(200, [0, 130]);
        assert_eq!(slots.capacity(), 198);
        assert_eq!(slots.take_lowest(), Some(1));
        assert_eq!(slots.take_lowest(), Some(2));
        for expected in 3..130 {
            assert_eq!(slots.take_lowest(), Some(expected));
        }
        assert_eq!(slots.take_lowest(), Some(131), "reserved 130 is skipped");
        assert!(slots.give_back(5));
        assert!(!slots.give_back(5));
        assert_eq!(slots.take_lowest(), Some(5));
        assert_eq!(slots.in_use(), 130);
    }

    #[test]
    fn every_slot_of_a_multi_level_bitmap_is_found_then_none() {
        let len = 64 * 64 * 3 + 7;
        let mut slots = Slots::new(len, []);
        for expected in 0..len {
            assert_eq!(slots.take_lowest(), Some(expected));
        }
        assert_eq!(slots.take_lowest(), None);
        assert!(slots.give_back(4097));
        assert_eq!(slots.take_lowest(), Some(4097));
        assert_eq!(slots.taken().count(), len as usize);
    }

    #[test]
    fn empty_bitmap_has_nothing_to_give() {
        let mut slots = Slots::new(0, [0]);
        assert_eq!(slots.capacity(), 0);
        assert_eq!(slots.take_lowest(), None);
        assert!(!slots.take(0));
        assert!(!slots.give_back(0));
    }
}
