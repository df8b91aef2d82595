//! The floor under a sandboxed hook call on this machine: what a fresh instance of
//! the smallest possible component costs with the host's own engine configuration
//! (pooling allocator, fuel, epoch deadline, copy-on-write memory images, pages reset
//! with `PAGEMAP_SCAN`), and what lowering arguments adds, before any guest code runs.
//!
//! `cargo bench -p loyalty-host --bench hook_floor`. The component is built here with
//! `wasm-encoder`: one core module with a linear memory the size of the airline
//! plugin's (7 pages of 64 KiB), no imports, and two exports:
//! - `touch(pages: u32) -> u32` writes one word into each of the first `pages` 4 KiB
//!   pages (a guest's stack, statics and heap are what a real call dirties), lifted
//!   with scalar types only, so nothing is lowered into guest memory;
//! - `count(strings: list<string>) -> u32` returns the list's length: the host lowers
//!   the list and each string into guest memory through the module's `cabi_realloc`
//!   (a bump allocator of a few instructions), as it lowers a hook's member, event and
//!   context (the airline's `on-event` lowers about 20 strings and lists);
//! - `size(bytes: list<u8>) -> u32`, the same function given one 1 KiB byte list: what
//!   passing a hook's arguments as one pre-encoded blob would cost instead.
//!
//! Two more variants give the component the contract's host imports, `log` and
//! `panic` (a trap must carry the guest's panic message, and a string can only reach
//! the host through an import that reads it from guest memory): wired as
//! wit-component wires every plugin (a shim instance, the core module, a fixup
//! instance that fills the shim's table), and the one alternative, the core module
//! importing its memory from a one-memory instance made first. With the 20 strings
//! lowered and nothing else done, these are the floor of any hook under this
//! contract.
//!
//! Each iteration does what the host does per hook call: a new store with fuel and a
//! deadline, instantiation from an `InstancePre`, the call, and the store's teardown
//! (which resets the dirtied pages for the next instance). Run next to `hook_call`
//! (`scripts/bench` runs both): the floor is what no plugin, however small, can go
//! below with this runtime on this machine.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use loyalty_host::sandbox::{Limits, Sandbox};
use wasm_encoder::{
    BlockType, CanonicalOption, CodeSection, ComponentBuilder, ComponentExportKind,
    ComponentTypeRef, ComponentValType, ConstExpr, ElementSection, Elements, EntityType,
    ExportKind, ExportSection, Function, FunctionSection, GlobalSection, GlobalType, ImportSection,
    MemArg, MemorySection, MemoryType, Module, ModuleArg, PrimitiveValType, RefType, TableSection,
    TableType, TypeSection, ValType,
};
use wasmtime::Store;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, TypedFunc};

/// The component's memory: 7 wasm pages (64 KiB each), the airline plugin's initial
/// size.
const MEMORY: MemoryType = MemoryType {
    minimum: 7,
    maximum: None,
    memory64: false,
    shared: false,
    page_size_log2: None,
};

/// The shim's table of the two lowered host functions (see [`shim_module`]).
const IMPORT_TABLE: TableType = TableType {
    element_type: RefType::FUNCREF,
    table64: false,
    minimum: 2,
    maximum: Some(2),
    shared: false,
};

/// Append the core signatures of the two host imports: `log(level, ptr, len)`, then
/// `panic(ptr, len)`.
fn import_signatures(types: &mut TypeSection) {
    types.ty().function([ValType::I32; 3], []);
    types.ty().function([ValType::I32; 2], []);
}

/// Where the module's bump allocator starts handing out memory (past the pages
/// `touch` writes).
const HEAP_START: i32 = 1 << 18;

/// The core module: `touch(pages) -> pages`, writing one word per 4 KiB page;
/// `cabi_realloc`, a bump allocator (what the host calls to place each argument
/// string and list in guest memory); `count(ptr, len) -> len`, for a `list<string>`.
///
/// With host imports, the module also imports the contract's two host functions as
/// wit-bindgen's guests do (`log(level, ptr, len)` and `panic(ptr, len)`); see
/// [`component_bytes`] for the two ways a component can provide them.
fn core_module(imports: Imports) -> Module {
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I32]);
    types.ty().function([ValType::I32; 4], [ValType::I32]);
    types.ty().function([ValType::I32; 2], [ValType::I32]);
    import_signatures(&mut types); // types 3 and 4
    let mut import_section = ImportSection::new();
    import_section.import("host", "log", EntityType::Function(3));
    import_section.import("host", "panic", EntityType::Function(4));
    if imports == Imports::MemoryImported {
        import_section.import("env", "memory", EntityType::Memory(MEMORY));
    }
    // Defined functions come after the imported ones.
    let first = if imports == Imports::None { 0 } else { 2 };
    let mut funcs = FunctionSection::new();
    funcs.function(0);
    funcs.function(1);
    funcs.function(2);
    let mut globals = GlobalSection::new();
    globals.global(
        GlobalType {
            val_type: ValType::I32,
            mutable: true,
            shared: false,
        },
        &ConstExpr::i32_const(HEAP_START),
    );
    let mut memories = MemorySection::new();
    memories.memory(MEMORY);
    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    exports.export("touch", ExportKind::Func, first);
    exports.export("cabi_realloc", ExportKind::Func, first + 1);
    exports.export("count", ExportKind::Func, first + 2);

    // local 1 = i; while i < pages { mem[i * 4096] = i; i += 1 }; return pages
    let mut f = Function::new([(1, ValType::I32)]);
    let store = MemArg {
        offset: 0,
        align: 2,
        memory_index: 0,
    };
    f.instructions()
        .block(BlockType::Empty)
        .loop_(BlockType::Empty)
        .local_get(1)
        .local_get(0)
        .i32_ge_u()
        .br_if(1)
        .local_get(1)
        .i32_const(4096)
        .i32_mul()
        .local_get(1)
        .i32_store(store)
        .local_get(1)
        .i32_const(1)
        .i32_add()
        .local_set(1)
        .br(0)
        .end()
        .end()
        .local_get(0)
        .end();
    let mut code = CodeSection::new();
    code.function(&f);

    // cabi_realloc(old_ptr, old_size, align, new_size): align the bump pointer, hand
    // it out, move it on (never reused: the instance is thrown away after one call).
    let mut realloc = Function::new([(1, ValType::I32)]);
    realloc
        .instructions()
        .global_get(0)
        .local_get(2)
        .i32_add()
        .i32_const(1)
        .i32_sub()
        .i32_const(0)
        .local_get(2)
        .i32_sub()
        .i32_and()
        .local_tee(4)
        .local_get(3)
        .i32_add()
        .global_set(0)
        .local_get(4)
        .end();
    code.function(&realloc);

    let mut count = Function::new([]);
    count.instructions().local_get(1).end();
    code.function(&count);

    let mut module = Module::new();
    module.section(&types);
    if imports != Imports::None {
        module.section(&import_section);
    }
    module.section(&funcs);
    if imports != Imports::MemoryImported {
        module.section(&memories);
    }
    module.section(&globals).section(&exports).section(&code);
    module
}

/// wit-component's shim for a guest whose imports take strings: a table of two
/// entries, and two functions that call through it (the lowered host functions need
/// the guest's memory, which exists only once the guest is instantiated).
fn shim_module() -> Module {
    let mut types = TypeSection::new();
    import_signatures(&mut types);
    let mut funcs = FunctionSection::new();
    funcs.function(0);
    funcs.function(1);
    let mut tables = TableSection::new();
    tables.table(IMPORT_TABLE);
    let mut exports = ExportSection::new();
    exports.export("0", ExportKind::Func, 0);
    exports.export("1", ExportKind::Func, 1);
    exports.export("$imports", ExportKind::Table, 0);
    let mut code = CodeSection::new();
    for (ty, params) in [(0u32, 3u32), (1, 2)] {
        let mut f = Function::new([]);
        let mut ins = f.instructions();
        for i in 0..params {
            ins.local_get(i);
        }
        ins.i32_const(ty as i32).call_indirect(0, ty).end();
        code.function(&f);
    }
    let mut module = Module::new();
    module
        .section(&types)
        .section(&funcs)
        .section(&tables)
        .section(&exports)
        .section(&code);
    module
}

/// wit-component's fixup: fills the shim's table with the lowered host functions
/// when it is instantiated, that is on every instantiation of the component.
fn fixup_module() -> Module {
    let mut types = TypeSection::new();
    import_signatures(&mut types);
    let mut imports = ImportSection::new();
    imports.import("", "0", EntityType::Function(0));
    imports.import("", "1", EntityType::Function(1));
    imports.import("", "$imports", EntityType::Table(IMPORT_TABLE));
    let mut elements = ElementSection::new();
    elements.active(
        Some(0),
        &ConstExpr::i32_const(0),
        Elements::Functions([0, 1][..].into()),
    );
    let mut module = Module::new();
    module.section(&types).section(&imports).section(&elements);
    module
}

/// How the floor component gives its core module the contract's host functions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Imports {
    /// No imports at all.
    None,
    /// As wit-component builds every plugin: a shim instance whose functions call
    /// through a table, the core module (which defines the memory the lowered host
    /// functions read strings from), then a fixup instance that fills the table.
    Shim,
    /// The other way to lower string-taking imports: a one-memory module
    /// instantiated first and the core module importing its memory, so the host
    /// functions can be lowered before the core module exists. (A real plugin would
    /// then have its data segments copied into memory on every instantiation instead
    /// of mapped copy-on-write; this module has none.)
    MemoryImported,
}

/// The component's imports `log: func(level: u32, message: string)` and
/// `panic: func(message: string)`, as component function indices.
fn host_imports(c: &mut ComponentBuilder) -> (u32, u32) {
    let (log_ty, mut enc) = c.type_function(None);
    enc.params([
        ("level", ComponentValType::Primitive(PrimitiveValType::U32)),
        (
            "message",
            ComponentValType::Primitive(PrimitiveValType::String),
        ),
    ])
    .result(None);
    let (panic_ty, mut enc) = c.type_function(None);
    enc.params([(
        "message",
        ComponentValType::Primitive(PrimitiveValType::String),
    )])
    .result(None);
    let log = c.import("log", ComponentTypeRef::Func(log_ty));
    let panic = c.import("panic", ComponentTypeRef::Func(panic_ty));
    (log, panic)
}

/// The host imports `(log, panic)` lowered to core functions that read their strings
/// from `memory`.
fn lower_host_imports(
    c: &mut ComponentBuilder,
    (log, panic): (u32, u32),
    memory: u32,
) -> (u32, u32) {
    let options = [CanonicalOption::UTF8, CanonicalOption::Memory(memory)];
    (
        c.lower_func(None, log, options),
        c.lower_func(None, panic, options),
    )
}

/// A module that only defines and exports the memory (for [`Imports::MemoryImported`]).
fn memory_module() -> Module {
    let mut memories = MemorySection::new();
    memories.memory(MEMORY);
    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    let mut module = Module::new();
    module.section(&memories).section(&exports);
    module
}

/// The component: the core module instantiated and `touch` lifted as
/// `func(pages: u32) -> u32`, `count` and `size` lifted with the guest's memory and
/// `cabi_realloc`; with host imports wired in as [`Imports`] says.
fn component_bytes(imports: Imports) -> Vec<u8> {
    let mut c = ComponentBuilder::default();
    let module = c.core_module(None, &core_module(imports));
    let instance = match imports {
        Imports::None => c.core_instantiate(None, module, []),
        Imports::Shim => {
            let imports = host_imports(&mut c);
            let shim = c.core_module(None, &shim_module());
            let shim = c.core_instantiate(None, shim, []);
            let shim_log = c.core_alias_export(None, shim, "0", ExportKind::Func);
            let shim_panic = c.core_alias_export(None, shim, "1", ExportKind::Func);
            let table = c.core_alias_export(None, shim, "$imports", ExportKind::Table);
            let host = c.core_instantiate_exports(
                None,
                [
                    ("log", ExportKind::Func, shim_log),
                    ("panic", ExportKind::Func, shim_panic),
                ],
            );
            let instance = c.core_instantiate(None, module, [("host", ModuleArg::Instance(host))]);
            let memory = c.core_alias_export(None, instance, "memory", ExportKind::Memory);
            let (core_log, core_panic) = lower_host_imports(&mut c, imports, memory);
            let fixup_args = c.core_instantiate_exports(
                None,
                [
                    ("0", ExportKind::Func, core_log),
                    ("1", ExportKind::Func, core_panic),
                    ("$imports", ExportKind::Table, table),
                ],
            );
            let fixup = c.core_module(None, &fixup_module());
            c.core_instantiate(None, fixup, [("", ModuleArg::Instance(fixup_args))]);
            instance
        }
        Imports::MemoryImported => {
            let imports = host_imports(&mut c);
            let memory_module = c.core_module(None, &memory_module());
            let memory_instance = c.core_instantiate(None, memory_module, []);
            let memory = c.core_alias_export(None, memory_instance, "memory", ExportKind::Memory);
            let (core_log, core_panic) = lower_host_imports(&mut c, imports, memory);
            let host = c.core_instantiate_exports(
                None,
                [
                    ("log", ExportKind::Func, core_log),
                    ("panic", ExportKind::Func, core_panic),
                ],
            );
            let env = c.core_instantiate_exports(None, [("memory", ExportKind::Memory, memory)]);
            c.core_instantiate(
                None,
                module,
                [
                    ("host", ModuleArg::Instance(host)),
                    ("env", ModuleArg::Instance(env)),
                ],
            )
        }
    };
    let core_touch = c.core_alias_export(None, instance, "touch", ExportKind::Func);
    let (ty, mut enc) = c.type_function(None);
    enc.params([("pages", ComponentValType::Primitive(PrimitiveValType::U32))])
        .result(Some(ComponentValType::Primitive(PrimitiveValType::U32)));
    let touch = c.lift_func(None, core_touch, ty, []);
    c.export("touch", ComponentExportKind::Func, touch, None);

    let memory = c.core_alias_export(None, instance, "memory", ExportKind::Memory);
    let realloc = c.core_alias_export(None, instance, "cabi_realloc", ExportKind::Func);
    let core_count = c.core_alias_export(None, instance, "count", ExportKind::Func);
    // `count(strings: list<string>) -> u32`, and the same core function lifted as
    // `size(bytes: list<u8>) -> u32`: one `realloc` call and one copy, however long
    // the list.
    for (name, param, element) in [
        ("count", "strings", PrimitiveValType::String),
        ("size", "bytes", PrimitiveValType::U8),
    ] {
        let (list, enc) = c.type_defined(None);
        enc.list(ComponentValType::Primitive(element));
        let (ty, mut enc) = c.type_function(None);
        enc.params([(param, ComponentValType::Type(list))])
            .result(Some(ComponentValType::Primitive(PrimitiveValType::U32)));
        let func = c.lift_func(
            None,
            core_count,
            ty,
            [
                CanonicalOption::UTF8,
                CanonicalOption::Memory(memory),
                CanonicalOption::Realloc(realloc),
            ],
        );
        c.export(name, ComponentExportKind::Func, func, None);
    }
    c.finish()
}

/// A call of one export of the floor component, with its arguments.
#[derive(Clone, Copy)]
enum Call<'a> {
    Touch(u32),
    Strings(&'a [String]),
    Bytes(&'a [u8]),
}

/// A fresh instance per call, from its own [`Sandbox`]: the host's engine, configured
/// exactly as for plugins, with a pool of its own. (Pages a call writes stay counted
/// as written in the pool's memory slots, and are reset after every later call in
/// the same slot, so one variant measured in another's pool would pay for its pages.)
struct Floor {
    sandbox: Sandbox,
    pre: InstancePre<()>,
    exports: [ComponentExportIndex; 3],
}

impl Floor {
    fn new(imports: Imports) -> Floor {
        let sandbox = Sandbox::new(Limits::default()).unwrap();
        let engine = sandbox.engine();
        let component = Component::new(engine, component_bytes(imports)).unwrap();
        let mut linker = Linker::<()>::new(engine);
        if imports != Imports::None {
            // Like the host's: a log line and a panic message, kept in the store.
            let mut root = linker.root();
            root.func_wrap("log", |_, (_level, message): (u32, String)| {
                black_box(message);
                Ok(())
            })
            .unwrap();
            root.func_wrap("panic", |_, (message,): (String,)| {
                black_box(message);
                Ok(())
            })
            .unwrap();
        }
        let pre = linker.instantiate_pre(&component).unwrap();
        let exports =
            ["touch", "count", "size"].map(|name| component.get_export_index(None, name).unwrap());
        Floor {
            sandbox,
            pre,
            exports,
        }
    }

    /// What the host does per hook call: a store with fuel and a deadline, a fresh
    /// instance, the call, and the store's teardown.
    fn call(&self, call: Call<'_>) -> u32 {
        let mut store = Store::new(self.sandbox.engine(), ());
        store.set_fuel(self.sandbox.limits().fuel).unwrap();
        store.set_epoch_deadline(100);
        store.epoch_deadline_trap();
        let instance = self.pre.instantiate(&mut store).unwrap();
        let [touch, count, size] = self.exports;
        match call {
            Call::Touch(pages) => {
                let f: TypedFunc<(u32,), (u32,)> =
                    instance.get_typed_func(&mut store, touch).unwrap();
                f.call(&mut store, (pages,)).unwrap().0
            }
            Call::Strings(strings) => {
                let f: TypedFunc<(&[String],), (u32,)> =
                    instance.get_typed_func(&mut store, count).unwrap();
                f.call(&mut store, (strings,)).unwrap().0
            }
            Call::Bytes(bytes) => {
                let f: TypedFunc<(&[u8],), (u32,)> =
                    instance.get_typed_func(&mut store, size).unwrap();
                f.call(&mut store, (bytes,)).unwrap().0
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    // About as many strings as the airline's on-event lowers (ids, tier, currency,
    // line items' skus and categories, attribute keys and values, the config).
    let strings: Vec<String> = (0..20).map(|i| format!("string-{i}")).collect();
    // What the airline's member, event and context come to when encoded as one blob.
    let blob = vec![7u8; 1024];
    let variants: Vec<(String, Call<'_>, u32, Imports)> = vec![
        ("0 pages written".into(), Call::Touch(0), 0, Imports::None),
        ("12 pages written".into(), Call::Touch(12), 12, Imports::None),
        ("48 pages written".into(), Call::Touch(48), 48, Imports::None),
        (
            "0 pages written, 1 short string lowered".into(),
            Call::Strings(&strings[..1]),
            1,
            Imports::None,
        ),
        (
            "0 pages written, 20 short strings lowered".into(),
            Call::Strings(&strings),
            20,
            Imports::None,
        ),
        (
            "0 pages written, 20 short strings lowered, log and panic imports through a shim"
                .into(),
            Call::Strings(&strings),
            20,
            Imports::Shim,
        ),
        (
            "0 pages written, 20 short strings lowered, log and panic imports on an imported memory"
                .into(),
            Call::Strings(&strings),
            20,
            Imports::MemoryImported,
        ),
        (
            "0 pages written, one 1 KiB byte list lowered".into(),
            Call::Bytes(&blob),
            1024,
            Imports::None,
        ),
    ];

    let mut group = c.benchmark_group("fresh instance floor");
    for (name, call, expected, imports) in variants {
        let floor = Floor::new(imports);
        assert_eq!(floor.call(call), expected, "{name}");
        group.bench_function(name, |b| b.iter(|| floor.call(black_box(call))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
