// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title CheckpointRegistry
/// @notice Public, append-only record of transparency-log checkpoints (origin, tree size,
///         root hash). Anchoring a checkpoint on a chain the log operator does not control
///         gives outsiders a dated commitment that the operator cannot later rewrite: two
///         roots for the same size, or a smaller size after a larger one, are impossible here.
/// @dev One list per origin, keyed by keccak256(bytes(origin)). Entries are packed into two
///      storage slots: (size, time) and root. Sizes strictly increase per origin, so an entry
///      is also unique by (origin, size). Compiled for evmVersion london (no PUSH0) so the
///      same bytecode deploys on London-rules consortium chains.
contract CheckpointRegistry {
    /// @notice One anchored checkpoint.
    /// @param size The tree size of the checkpoint.
    /// @param time The block timestamp (seconds) at which it was anchored.
    /// @param root The RFC 9162 root hash at that size.
    struct Entry {
        uint64 size;
        uint64 time;
        bytes32 root;
    }

    /// @notice Who may add or remove publishers (the deployer until transferred).
    address public owner;

    /// @notice Accounts allowed to anchor checkpoints.
    mapping(address account => bool allowed) public isPublisher;

    mapping(bytes32 originHash => Entry[] entries) private _entries;

    /// @notice The caller is not the owner.
    /// @param caller The account that called.
    error NotOwner(address caller);

    /// @notice The caller is not an authorised publisher.
    /// @param caller The account that called.
    error NotPublisher(address caller);

    /// @notice The new size is not larger than the origin's last anchored size.
    /// @param last The last anchored size (0 when the origin has none yet).
    /// @param given The size that was refused.
    error SizeNotIncreasing(uint64 last, uint64 given);

    /// @notice No entry at this index for this origin.
    /// @param index The index asked for.
    /// @param count The number of entries the origin has.
    error IndexOutOfRange(uint256 index, uint256 count);

    /// @notice The zero address cannot be owner or publisher.
    error ZeroAddress();

    /// @notice A checkpoint was anchored.
    /// @param originHash keccak256 of the origin string (indexed, for log filters).
    /// @param origin The log origin line, in full.
    /// @param size The tree size.
    /// @param root The root hash.
    /// @param index Position of the entry in the origin's list (0-based).
    /// @param time The block timestamp stored with the entry.
    event Anchored(
        bytes32 indexed originHash, string origin, uint64 size, bytes32 root, uint256 index, uint64 time
    );

    /// @notice An account was allowed to publish.
    /// @param account The new publisher.
    event PublisherAdded(address indexed account);

    /// @notice An account may no longer publish.
    /// @param account The former publisher.
    event PublisherRemoved(address indexed account);

    /// @notice Ownership moved to another account.
    /// @param previousOwner The old owner.
    /// @param newOwner The new owner.
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    /// @notice The deployer becomes owner and first publisher.
    constructor() {
        owner = msg.sender;
        isPublisher[msg.sender] = true;
        emit OwnershipTransferred(address(0), msg.sender);
        emit PublisherAdded(msg.sender);
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    /// @notice Allow an account to anchor checkpoints.
    /// @param account The account to allow.
    function addPublisher(address account) external onlyOwner {
        if (account == address(0)) revert ZeroAddress();
        isPublisher[account] = true;
        emit PublisherAdded(account);
    }

    /// @notice Stop an account from anchoring checkpoints. Its past entries stay.
    /// @param account The account to remove.
    function removePublisher(address account) external onlyOwner {
        isPublisher[account] = false;
        emit PublisherRemoved(account);
    }

    /// @notice Hand the owner role to another account.
    /// @param newOwner The new owner.
    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    /// @notice Anchor a checkpoint: append (size, root, block time) to the origin's list.
    /// @dev Refuses a size that is not strictly larger than the last one for this origin, so
    ///      a size of 0 is never accepted and a size can never be re-anchored with another root.
    /// @param origin The log origin line.
    /// @param size The tree size.
    /// @param root The root hash at that size.
    /// @return index The position of the new entry.
    function anchor(string calldata origin, uint64 size, bytes32 root) external returns (uint256 index) {
        if (!isPublisher[msg.sender]) revert NotPublisher(msg.sender);
        bytes32 key = keccak256(bytes(origin));
        Entry[] storage list = _entries[key];
        index = list.length;
        uint64 last = index == 0 ? 0 : list[index - 1].size;
        if (size <= last) revert SizeNotIncreasing(last, size);
        uint64 time = uint64(block.timestamp);
        list.push(Entry({size: size, time: time, root: root}));
        emit Anchored(key, origin, size, root, index, time);
    }

    /// @notice How many checkpoints an origin has anchored.
    /// @param origin The log origin line.
    /// @return The number of entries.
    function count(string calldata origin) external view returns (uint256) {
        return _entries[keccak256(bytes(origin))].length;
    }

    /// @notice The entry at a position.
    /// @param origin The log origin line.
    /// @param index The position (0-based).
    /// @return size The tree size.
    /// @return root The root hash.
    /// @return time The block timestamp of the anchor.
    function get(string calldata origin, uint256 index)
        external
        view
        returns (uint64 size, bytes32 root, uint64 time)
    {
        Entry[] storage list = _entries[keccak256(bytes(origin))];
        if (index >= list.length) revert IndexOutOfRange(index, list.length);
        Entry storage e = list[index];
        return (e.size, e.root, e.time);
    }

    /// @notice The most recent entry; reverts with IndexOutOfRange(0, 0) when there is none.
    /// @param origin The log origin line.
    /// @return size The tree size.
    /// @return root The root hash.
    /// @return time The block timestamp of the anchor.
    /// @return index The position of the entry.
    function latest(string calldata origin)
        external
        view
        returns (uint64 size, bytes32 root, uint64 time, uint256 index)
    {
        Entry[] storage list = _entries[keccak256(bytes(origin))];
        if (list.length == 0) revert IndexOutOfRange(0, 0);
        index = list.length - 1;
        Entry storage e = list[index];
        return (e.size, e.root, e.time, index);
    }
}
