import Foundation
@testable import MailEngine
import Testing

/// `PerThread`: each thread sees only its own value, nested values restore the outer one.
@Suite struct PerThreadTests {
    @Test func eachThreadSeesItsOwnValueAndNestingRestores() {
        let slot = PerThread<Int>()
        #expect(slot.current == nil)
        slot.with(1) {
            #expect(slot.current == 1)
            slot.with(2) { #expect(slot.current == 2) }
            #expect(slot.current == 1)
        }
        #expect(slot.current == nil)
        let lock = NSLock()
        nonisolated(unsafe) var wrong = 0
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for _ in 0..<200 {
                slot.with(worker) {
                    if slot.current != worker { lock.withLock { wrong += 1 } }
                }
            }
        }
        #expect(lock.withLock { wrong } == 0)
        #expect(slot.current == nil)
    }
}
