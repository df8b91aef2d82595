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
    ComponentValType, ConstExpr, ExportKind, ExportSection, Function, FunctionSection,
    GlobalSection, GlobalType, MemArg, MemorySection, MemoryType, Module, PrimitiveValType,
    TypeSection, ValType,
};
use wasmtime::Store;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, TypedFunc};

/// Wasm pages (64 KiB) of the component's memory: the airline plugin's initial size.
const MEMORY_PAGES: u64 = 7;

/// Where the module's bump allocator starts handing out memory (past the pages
/// `touch` writes).
const HEAP_START: i32 = 1 << 18;

/// The core module: `touch(pages) -> pages`, writing one word per 4 KiB page;
/// `cabi_realloc`, a bump allocator (what the host calls to place each argument
/// string and list in guest memory); `count(ptr, len) -> len`, for a `list<string>`.
fn core_module() -> Module {
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I32]);
    types.ty().function([ValType::I32; 4], [ValType::I32]);
    types.ty().function([ValType::I32; 2], [ValType::I32]);
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
    memories.memory(MemoryType {
        minimum: MEMORY_PAGES,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    exports.export("touch", ExportKind::Func, 0);
    exports.export("cabi_realloc", ExportKind::Func, 1);
    exports.export("count", ExportKind::Func, 2);

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
    module
        .section(&types)
        .section(&funcs)
        .section(&memories)
        .section(&globals)
        .section(&exports)
        .section(&code);
    module
}

/// The component: the core module instantiated and `touch` lifted as
/// `func(pages: u32) -> u32`.
fn component_bytes() -> Vec<u8> {
    let mut c = ComponentBuilder::default();
    let module = c.core_module(None, &core_module());
    let instance = c.core_instantiate(None, module, []);
    let core_touch = c.core_alias_export(None, instance, "touch", ExportKind::Func);
    let (ty, mut enc) = c.type_function(None);
    enc.params([("pages", ComponentValType::Primitive(PrimitiveValType::U32))])
        .result(Some(ComponentValType::Primitive(PrimitiveValType::U32)));
    let touch = c.lift_func(None, core_touch, ty, []);
    c.export("touch", ComponentExportKind::Func, touch, None);

    let memory = c.core_alias_export(None, instance, "memory", ExportKind::Memory);
    let realloc = c.core_alias_export(None, instance, "cabi_realloc", ExportKind::Func);
    let core_count = c.core_alias_export(None, instance, "count", ExportKind::Func);
    let (strings, enc) = c.type_defined(None);
    enc.list(ComponentValType::Primitive(PrimitiveValType::String));
    let (ty, mut enc) = c.type_function(None);
    enc.params([("strings", ComponentValType::Type(strings))])
        .result(Some(ComponentValType::Primitive(PrimitiveValType::U32)));
    let count = c.lift_func(
        None,
        core_count,
        ty,
        [
            CanonicalOption::UTF8,
            CanonicalOption::Memory(memory),
            CanonicalOption::Realloc(realloc),
        ],
    );
    c.export("count", ComponentExportKind::Func, count, None);

    // The same core function lifted as `size(bytes: list<u8>) -> u32`: one `realloc`
    // call and one copy, however long the list.
    let (bytes, enc) = c.type_defined(None);
    enc.list(ComponentValType::Primitive(PrimitiveValType::U8));
    let (ty, mut enc) = c.type_function(None);
    enc.params([("bytes", ComponentValType::Type(bytes))])
        .result(Some(ComponentValType::Primitive(PrimitiveValType::U32)));
    let size = c.lift_func(
        None,
        core_count,
        ty,
        [
            CanonicalOption::UTF8,
            CanonicalOption::Memory(memory),
            CanonicalOption::Realloc(realloc),
        ],
    );
    c.export("size", ComponentExportKind::Func, size, None);
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
    fn new() -> Floor {
        let sandbox = Sandbox::new(Limits::default()).unwrap();
        let engine = sandbox.engine();
        let component = Component::new(engine, component_bytes()).unwrap();
        let pre = Linker::<()>::new(engine)
            .instantiate_pre(&component)
            .unwrap();
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
    let variants: Vec<(String, Call<'_>, u32)> = vec![
        ("0 pages written".into(), Call::Touch(0), 0),
        ("12 pages written".into(), Call::Touch(12), 12),
        ("48 pages written".into(), Call::Touch(48), 48),
        (
            "0 pages written, 1 short string lowered".into(),
            Call::Strings(&strings[..1]),
            1,
        ),
        (
            "0 pages written, 20 short strings lowered".into(),
            Call::Strings(&strings),
            20,
        ),
        (
            "0 pages written, one 1 KiB byte list lowered".into(),
            Call::Bytes(&blob),
            1024,
        ),
    ];

    let mut group = c.benchmark_group("fresh instance floor");
    for (name, call, expected) in variants {
        let floor = Floor::new();
        assert_eq!(floor.call(call), expected, "{name}");
        group.bench_function(name, |b| b.iter(|| floor.call(black_box(call))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
