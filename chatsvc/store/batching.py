"""
Group commit, for every store: one transaction in flight at a time, and
every write that arrives meanwhile goes into the next one, so a burst from
many users costs a few transactions, not one each. A store says how a batch
is written (L{GroupCommit._commit}) and what each write is told.
"""

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure


class GroupCommit:
    """
    The queue of a store's writes: (what, data, Deferred) each, in order; a
    Deferred of None is a companion of the write before it, in its
    transaction and answered by its Deferred.
    """

    BATCH_MAX = 5000  # writes in one transaction, at most (companions go with theirs)

    def _startQueue(self):
        self._queue = []
        self._writing = False  # a transaction is in flight, or due at the end of the turn
        self._idleWaiters = []
        self._closing = False
        self._started = None  # when the transaction being written began
        self.transactions = 0  # committed write transactions, for tests and benchmarks
        self.observeCommit = None  # called with each commit's seconds (--metrics)

    def _queueWrite(self, what, data, companions=()) -> Deferred:
        if self._closing:
            return fail(RuntimeError("the store is closed"))
        d = Deferred()
        self._queue.append((what, data, d))
        self._queue.extend((what, data, None) for what, data in companions)
        if not self._writing:
            # At the end of this reactor turn, so that everything read in it
            # (a burst from many users) shares one transaction.
            self._writing = True
            self._reactor.callLater(0, self._writeBatch)
        return d

    def _writeBatch(self):
        end = min(self.BATCH_MAX, len(self._queue))
        while end < len(self._queue) and self._queue[end][2] is None:
            end += 1  # a write's companions go in its transaction
        batch = self._queue[:end]
        del self._queue[:end]
        self._writing = True
        self._started = self._monotonic()
        self._transaction(batch).addBoth(self._written, batch)

    def _written(self, result, batch):
        self._writing = False
        failed = isinstance(result, Failure)
        if not failed:
            self._beforeNext(result)
        if self._queue:  # keep the writer busy before telling anyone
            self._writeBatch()
        if failed:
            self._failedBatch(result, batch)
        else:
            self.transactions += 1
            if self.observeCommit is not None:
                self.observeCommit(self._monotonic() - self._started)
            self._committedBatch(result, batch)
        if not self._writing:
            waiters, self._idleWaiters = self._idleWaiters, []
            for waiter in waiters:
                waiter.callback(None)

    # What a store says

    def _transaction(self, batch) -> Deferred:
        """Write C{batch} in one transaction, off the reactor thread."""
        raise NotImplementedError

    def _beforeNext(self, result):
        """A batch committed with C{result}; the next one is about to start."""

    def _committedBatch(self, result, batch):
        """Tell each write of a committed batch."""
        raise NotImplementedError

    def _failedBatch(self, failure, batch):
        """Tell each write of a batch that failed."""
        for _, _, d in batch:
            if d is not None:
                d.errback(failure)

    # Closing

    def close(self) -> Deferred:
        """Refuse new writes, finish the queued ones, then release the store."""
        if self._pool is None or self._closing:
            return succeed(None)
        self._closing = True
        return self._whenIdle().addCallback(lambda _: self._release())

    def _whenIdle(self) -> Deferred:
        if not self._writing:
            return succeed(None)
        d = Deferred()
        self._idleWaiters.append(d)
        return d
